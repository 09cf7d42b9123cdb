"""The outbound-URL guard against real local HTTP(S) servers: what it refuses never gets a connection,
what is allowlisted does; redirects are not followed; a name is resolved once and the checked address is
the one connected to; TLS still verifies the name."""

import datetime as dt
import ipaddress
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from apps.core import outbound_url


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the ERP sender relies on

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self.server.received.append({"path": self.path, "host": self.headers["Host"]})
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/landed")
        else:
            self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    do_GET = do_POST = _answer

    def log_message(self, *args):
        pass


class _V6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6


def _serve(server):
    server.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server


@pytest.fixture
def server():
    httpd = _serve(ThreadingHTTPServer(("127.0.0.1", 0), _Handler))
    httpd.port = httpd.server_address[1]
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _session(*allowed):
    return outbound_url.session(list(allowed), setting="TEST_ALLOWED_HOSTS")


@pytest.fixture(autouse=True)
def _fresh_resolution_cache():
    outbound_url._resolved.clear()
    yield
    outbound_url._resolved.clear()


# ---------------------------------------------------------------- save-time check


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:6379/", "loopback"),
        ("http://127.8.9.10/", "loopback"),
        ("http://localhost:8000/", "loopback"),  # a name (in /etc/hosts) that resolves to loopback
        ("http://LOCALHOST./", "loopback"),
        ("http://[::1]:8000/", "loopback"),
        ("http://[::ffff:127.0.0.1]/", "loopback"),
        ("http://[::ffff:7f00:1]/", "loopback"),
        ("http://[64:ff9b::7f00:1]/", "loopback"),  # NAT64 of 127.0.0.1
        ("http://169.254.169.254/latest/meta-data/", "metadata"),
        ("http://[fd00:ec2::254]/", "metadata"),
        ("http://100.100.100.200/", "metadata"),
        ("http://169.254.1.1/", "link-local"),
        ("http://[fe80::1]/", "link-local"),
        ("http://10.0.0.5/", "private"),
        ("http://172.16.0.1/", "private"),
        ("http://192.168.1.1/", "private"),
        ("http://[fd12:3456::1]/", "private"),
        ("http://100.64.0.1/", "non-public"),
        ("http://224.0.0.1/", "multicast"),
        ("http://[ff02::1]/", "multicast"),
        ("http://0.0.0.0:8000/", "unspecified"),
        ("http://[::]/", "unspecified"),
        ("http://2130706433/", "notation"),  # 127.0.0.1 as one decimal number
        ("http://0x7f000001/", "notation"),
        ("http://0x7f.0.0.1/", "notation"),
        ("http://0177.0.0.1/", "notation"),  # octal
        ("http://127.1/", "notation"),
        ("gopher://127.0.0.1:6379/_INFO", "scheme"),
        ("file:///etc/passwd", "scheme"),
        ("ftp://192.0.2.1/", "scheme"),
        ("http:///nohost", "url"),
        ("not a url", "url"),
    ],
)
def test_it_refuses_urls_that_do_not_lead_to_a_public_address(url, reason):
    with pytest.raises(outbound_url.OutboundRefused) as refused:
        outbound_url.check_url(url, allowed_hosts=[], setting="TEST_ALLOWED_HOSTS")
    assert refused.value.reason == reason
    if reason not in ("scheme", "url", "notation"):
        assert "TEST_ALLOWED_HOSTS" in str(refused.value)


def test_a_refusal_of_a_name_does_not_repeat_the_address_it_resolved_to():
    with pytest.raises(outbound_url.OutboundRefused) as refused:
        outbound_url.check_url("http://localhost:6379/", allowed_hosts=[], setting="X")
    assert "localhost" in str(refused.value) and "127.0.0.1" not in str(refused.value)


def test_public_addresses_pass_and_allowlist_entries_admit_by_address_network_name_and_port():
    outbound_url.check_url("https://93.184.215.14/hook", allowed_hosts=[], setting="X")
    outbound_url.check_url("http://[2001:4860:4860::8888]/", allowed_hosts=[], setting="X")
    outbound_url.check_url("http://127.0.0.1:6379/", allowed_hosts=["127.0.0.1"], setting="X")
    outbound_url.check_url("http://10.1.2.3/", allowed_hosts=["10.0.0.0/8"], setting="X")
    outbound_url.check_url("http://[::1]:81/", allowed_hosts=["[::1]:81"], setting="X")
    outbound_url.check_url("http://localhost:8081/", allowed_hosts=["localhost:8081"], setting="X")
    for url, allowed in [
        ("http://localhost:6379/", ["localhost:8081"]),  # the entry's port only
        ("http://127.0.0.1:6379/", ["127.0.0.1:8081"]),
        ("http://[::ffff:127.0.0.1]/", ["::1"]),
        ("http://169.254.169.254/", ["10.0.0.0/8"]),
    ]:
        with pytest.raises(outbound_url.OutboundRefused):
            outbound_url.check_url(url, allowed_hosts=allowed, setting="X")


@pytest.mark.parametrize("entry", ["", "http://x", "a/b/c", "host:port", "[::1", "10.0.0.0/33", "2130706433", "x:0"])
def test_malformed_allowlist_entries_are_refused(entry):
    with pytest.raises(ValueError):
        outbound_url.parse_entry(entry or " ")


# ---------------------------------------------------------------- send time, real servers


def test_loopback_is_refused_before_any_connection_without_an_allowlist(server):
    with pytest.raises(outbound_url.OutboundRefused):
        _session().post(f"http://127.0.0.1:{server.port}/hook", data=b"{}", timeout=5)
    assert server.received == []


def test_loopback_is_reached_when_allowlisted(server):
    response = _session("127.0.0.1").post(f"http://127.0.0.1:{server.port}/hook", data=b"{}", timeout=5)
    assert response.status_code == 200 and server.received[0]["path"] == "/hook"


def test_a_redirect_is_not_followed(server):
    session = _session("127.0.0.1")
    response = session.get(f"http://127.0.0.1:{server.port}/redirect", timeout=5, allow_redirects=True)
    assert response.status_code == 302
    assert [r["path"] for r in server.received] == ["/redirect"]


def test_a_name_that_resolves_to_loopback_is_refused_and_admitted_only_by_its_allowlist_entry(server):
    with pytest.raises(outbound_url.OutboundRefused):
        _session().get(f"http://localhost:{server.port}/", timeout=5)
    with pytest.raises(outbound_url.OutboundRefused):
        _session("localhost:1").get(f"http://localhost:{server.port}/", timeout=5)
    assert server.received == []
    response = _session("localhost").get(f"http://localhost:{server.port}/", timeout=5)
    assert response.status_code == 200
    assert server.received[0]["host"] == f"localhost:{server.port}"  # the Host header keeps the name


@pytest.mark.parametrize("host", ["[::1]", "[::ffff:127.0.0.1]", "[0:0:0:0:0:ffff:7f00:1]"])
def test_ipv6_loopback_and_ipv4_mapped_loopback_are_refused(server, host):
    v6 = None
    if socket.has_ipv6:
        try:
            v6 = _serve(_V6Server(("::1", server.port), _Handler))
        except OSError:
            v6 = None  # no IPv6 loopback here; the refusal below still must hold
    try:
        with pytest.raises(outbound_url.OutboundRefused):
            _session("127.0.0.1/32").get(f"http://{host}:{server.port}/", timeout=5)
        assert server.received == [] and (v6 is None or v6.received == [])
    finally:
        if v6 is not None:
            v6.shutdown()
            v6.server_close()


def test_the_metadata_address_is_refused_without_trying_to_connect():
    with pytest.raises(outbound_url.OutboundRefused) as refused:
        _session().get("http://169.254.169.254/latest/meta-data/iam/", timeout=5)
    assert refused.value.reason == "metadata"


def test_redis_style_targets_on_other_schemes_are_refused():
    with pytest.raises(outbound_url.OutboundRefused):
        _session("127.0.0.1").get("gopher://127.0.0.1:6379/_FLUSHALL", timeout=5)


def test_a_timeout_is_required():
    with pytest.raises(ValueError, match="timeout"):
        _session("127.0.0.1").get("http://127.0.0.1:9/")


def _count_lookups(monkeypatch, answers=None):
    """Wrap the real getaddrinfo; count lookups of names (IP literals are not lookups). With `answers`,
    a name resolves to each listed address in turn (a rebinding DNS server)."""
    real = socket.getaddrinfo
    names = []

    def getaddrinfo(host, port, *args, **kwargs):
        try:
            ipaddress.ip_address(host)
        except ValueError:
            names.append(host)
            if answers is not None:
                address = answers[min(len(names), len(answers)) - 1]
                return real(address, port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return names


def test_a_name_is_resolved_once_for_many_requests_and_an_ip_literal_never(server, monkeypatch):
    lookups = _count_lookups(monkeypatch)
    session = _session("localhost", "127.0.0.1")
    for _ in range(5):
        assert session.post(f"http://localhost:{server.port}/a", data=b"x", timeout=5).status_code == 200
    for _ in range(5):
        assert session.post(f"http://127.0.0.1:{server.port}/b", data=b"x", timeout=5).status_code == 200
    assert lookups == ["localhost"]


def test_the_checked_address_is_the_one_connected_to_when_dns_rebinds(server, monkeypatch):
    # The name first resolves to an allowlisted address where nothing listens, then to the server's.
    # A guard that checked and then let the HTTP library resolve again would reach the server.
    lookups = _count_lookups(monkeypatch, answers=["127.0.0.2", "127.0.0.1"])
    session = _session("127.0.0.2")
    with pytest.raises(requests.ConnectionError) as failed:
        session.get(f"http://rebind.invalid:{server.port}/", timeout=5)
    assert lookups == ["rebind.invalid"] and server.received == []
    assert outbound_url.failure_text(failed.value) == "connection failed"


def test_failures_are_described_without_network_detail(server):
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    with pytest.raises(requests.ConnectionError) as failed:
        _session("127.0.0.1").get(f"http://127.0.0.1:{port}/", timeout=5)
    text = outbound_url.failure_text(failed.value)
    assert text == "connection failed" and str(port) not in text
    with pytest.raises(outbound_url.OutboundRefused) as refused:
        _session().get(f"http://127.0.0.1:{port}/", timeout=5)
    assert outbound_url.failure_text(refused.value) == "refused by outbound policy"

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # accepts the connection, never answers
    try:
        with pytest.raises(requests.Timeout) as slow:
            _session("127.0.0.1").get(f"http://127.0.0.1:{silent.getsockname()[1]}/", timeout=(2, 0.2))
        assert outbound_url.failure_text(slow.value) == "timeout"
    finally:
        silent.close()


# ---------------------------------------------------------------- TLS keeps the name


@pytest.fixture
def tls_server(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    sni = []
    context.sni_callback = lambda sock, server_name, ctx: sni.append(server_name)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    _serve(httpd)
    httpd.port, httpd.sni, httpd.ca = httpd.server_address[1], sni, str(cert_file)
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def test_tls_sends_the_name_as_sni_and_verifies_the_certificate_for_it(tls_server):
    session = _session("localhost", "127.0.0.1")
    response = session.get(f"https://localhost:{tls_server.port}/tls", timeout=5, verify=tls_server.ca)
    assert response.status_code == 200 and tls_server.sni == ["localhost"]
    # The same server by address: the certificate names "localhost", not 127.0.0.1, so it is refused.
    with pytest.raises(requests.exceptions.SSLError):
        session.get(f"https://127.0.0.1:{tls_server.port}/tls", timeout=5, verify=tls_server.ca)
