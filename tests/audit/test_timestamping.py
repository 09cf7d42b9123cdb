"""RFC 3161 timestamps from a real local TSA (`openssl ts -reply` behind an HTTP server)."""

import base64
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from apps.audit import services, signatures
from apps.audit.models import AuditCheckpoint
from apps.audit.timestamping import TimestampError, build_request, parse_reply

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")

TSA_CONFIG = """
[ tsa ]
default_tsa = tsa_config1
[ tsa_config1 ]
dir = {dir}
serial = $dir/serial
crypto_device = builtin
signer_cert = $dir/tsa.crt
certs = $dir/tsa.crt
signer_key = $dir/tsa.key
signer_digest = sha256
default_policy = 1.2.3.4.1
digests = sha256
accuracy = secs:1
ordering = yes
tsa_name = no
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""


@pytest.fixture(scope="module")
def tsa(tmp_path_factory):
    """A running time-stamping authority: a self-signed TSA certificate and openssl answering over HTTP."""
    folder = tmp_path_factory.mktemp("tsa")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", folder / "tsa.key",
         "-out", folder / "tsa.crt", "-subj", "/CN=Tezgah test TSA", "-days", "2",
         "-addext", "extendedKeyUsage=critical,timeStamping"],
        check=True, capture_output=True,
    )  # fmt: skip
    (folder / "serial").write_text("01\n")
    (folder / "tsa.cnf").write_text(TSA_CONFIG.format(dir=folder))
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            with lock:
                (folder / "q.tsq").write_bytes(body)
                done = subprocess.run(
                    ["openssl", "ts", "-reply", "-config", folder / "tsa.cnf", "-queryfile", folder / "q.tsq",
                     "-out", folder / "r.tsr"],
                    capture_output=True, check=False,
                )  # fmt: skip
                reply = (folder / "r.tsr").read_bytes() if done.returncode == 0 else b""
            self.send_response(200 if reply else 500)
            self.send_header("Content-Type", "application/timestamp-reply")
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield {"url": f"http://127.0.0.1:{server.server_port}/", "cert": folder / "tsa.crt", "dir": folder}
    server.shutdown()


def test_openssl_accepts_our_request(tmp_path):
    request = tmp_path / "q.tsq"
    request.write_bytes(build_request(b"statement", nonce=42))
    out = subprocess.run(
        ["openssl", "ts", "-query", "-in", request, "-text"], capture_output=True, text=True, check=True
    )
    assert "SHA256" in out.stdout.upper() and "Nonce: 0x2A" in out.stdout and "Certificate required: yes" in out.stdout


def test_a_refusal_and_garbage_are_errors():
    refused = bytes.fromhex("3005300302010" + "2")  # PKIStatus 2 (rejection), no token
    with pytest.raises(TimestampError, match="refused"):
        parse_reply(refused)
    with pytest.raises(TimestampError):
        parse_reply(b"\x01")


@pytest.mark.django_db
def test_a_checkpoint_gets_a_token_that_openssl_verifies(settings, tsa, tmp_path, signing_key):
    settings.AUDIT_TSA_URL = tsa["url"]
    services.record(None, "test.event", payload={"a": 1})
    services.seal_pending()
    checkpoint = services.make_checkpoint(force=True)
    stored = AuditCheckpoint.objects.get(pk=checkpoint.pk)
    assert stored.tsa_token
    statement = tmp_path / "statement.json"
    statement.write_bytes(signatures.statement(stored.statement_fields()))
    token = tmp_path / "token.der"
    token.write_bytes(base64.b64decode(stored.tsa_token))
    verified = subprocess.run(
        ["openssl", "ts", "-verify", "-data", statement, "-in", token, "-token_in", "-CAfile", tsa["cert"]],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert verified.returncode == 0, verified.stdout + verified.stderr
    statement.write_bytes(statement.read_bytes().replace(b'"tree_size":1', b'"tree_size":2'))
    forged = subprocess.run(
        ["openssl", "ts", "-verify", "-data", statement, "-in", token, "-token_in", "-CAfile", tsa["cert"]],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert forged.returncode != 0


@pytest.mark.django_db
def test_a_tsa_that_is_down_costs_the_token_not_the_checkpoint(settings, caplog, signing_key):
    settings.AUDIT_TSA_URL = "http://127.0.0.1:9/"  # discard port: nothing listens
    settings.AUDIT_TSA_TIMEOUT_SECONDS = 2
    services.record(None, "test.event")
    services.seal_pending()
    checkpoint = services.make_checkpoint(force=True)
    assert AuditCheckpoint.objects.get(pk=checkpoint.pk).tsa_token == ""
    assert "no RFC 3161 timestamp" in caplog.text


@pytest.mark.django_db
def test_a_tsa_that_keeps_failing_is_not_called_while_its_breaker_is_open(settings, caplog, signing_key):
    from apps.core.circuit_breaker import CircuitBreaker

    settings.AUDIT_TSA_URL = "http://127.0.0.1:9/"
    settings.AUDIT_TSA_TIMEOUT_SECONDS = 2
    for _ in range(3):
        services.record(None, "test.event")
        services.seal_pending()
        services.make_checkpoint(force=True)
    assert CircuitBreaker("tsa", failure_threshold=3, cooldown=300).state().state == "open"
    caplog.clear()
    services.record(None, "test.event")
    services.seal_pending()
    services.make_checkpoint(force=True)
    assert "the TSA breaker is open" in caplog.text
