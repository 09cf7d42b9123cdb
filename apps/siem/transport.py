"""Sending framed syslog messages to SIEM_ENDPOINT over TCP or TLS (RFC 5425), through the outbound guard.

`SIEM_ENDPOINT` is typed by operators, so its host goes through apps.core.outbound_url's address rules:
a loopback, private or otherwise non-public address is refused unless it is in SIEM_ALLOWED_HOSTS, and the
socket goes to an address that was checked (no second lookup).

Syslog over TCP has no acknowledgement. A batch counts as accepted when it was written and the server then
closed the connection in answer to ours (TCP: our FIN answered by its FIN; TLS: our close_notify answered
by a close): a server that closes that way has read every byte before it. A reset, a timeout or an error
on the way means the batch is sent again (at-least-once; the SIEM drops copies by `eid`).
"""

import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.utils.translation import gettext_lazy as _

from apps.core import outbound_url

SETTING = "SIEM_ALLOWED_HOSTS"


class SiemEndpointError(ValueError):
    pass


@dataclass(frozen=True)
class Endpoint:
    scheme: str
    host: str
    port: int

    def __str__(self):
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def parse_endpoint(text: str) -> Endpoint:
    """tcp://host:port or tls://host:port (the port is required: 514 and 6514 are only conventions)."""
    parts = urlsplit(text.strip())
    if parts.scheme not in ("tcp", "tls") or not parts.hostname or parts.path not in ("", "/"):
        raise SiemEndpointError(_("SIEM_ENDPOINT must look like tls://siem.example.com:6514 or tcp://host:514."))
    try:
        port = parts.port
    except ValueError:
        port = None
    if not port:
        raise SiemEndpointError(_("SIEM_ENDPOINT needs a port, like tls://siem.example.com:6514."))
    return Endpoint(parts.scheme, parts.hostname.lower(), port)


def tls_context() -> ssl.SSLContext:
    """Verifies the server against SIEM_CA_FILE (the system's CAs when empty) and its name; TLS 1.2 or newer."""
    context = ssl.create_default_context(cafile=settings.SIEM_CA_FILE or None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if settings.SIEM_CLIENT_CERT_FILE:
        context.load_cert_chain(settings.SIEM_CLIENT_CERT_FILE, settings.SIEM_CLIENT_KEY_FILE or None)
    return context


def _connect(endpoint: Endpoint, timeout: float) -> socket.socket:
    allowlist = outbound_url.Allowlist.parse(settings.SIEM_ALLOWED_HOSTS)
    addresses = outbound_url.checked_addresses(endpoint.host, endpoint.port, allowlist, SETTING)
    last = None
    for address in addresses:
        try:
            return socket.create_connection((str(address), endpoint.port), timeout=timeout)
        except OSError as exc:
            last = exc
    raise last or OSError("no address")


def _await_close(sock: socket.socket) -> None:
    """Read (and drop) until the server closes its side; raises on a timeout or a reset."""
    while sock.recv(4096):
        pass


class RefusedAfterHandshake(ConnectionError):
    """The server closed (or alerted) right after the handshake: it refused our certificate or name."""


def _await_verdict(sock: ssl.SSLSocket, timeout: float, handshake_seconds: float) -> None:
    """Wait a moment for the server to refuse us after the handshake: three times as long as the handshake
    took (which tracks the round trip and the server's load), at least 10 ms, at most SIEM_TLS_SETTLE_SECONDS.

    In TLS 1.3 the client's handshake is over before the server has checked the client certificate (and a
    syslog server checks permitted peers only after the handshake in any version): a refusing server then
    closes. Bytes sent meanwhile are lost, and its close could pass for the answer to ours, so nothing is
    sent until the server has had that long to say no. A syslog server never writes to us otherwise.
    """
    if settings.SIEM_TLS_SETTLE_SECONDS <= 0:
        return
    settle = min(settings.SIEM_TLS_SETTLE_SECONDS, max(0.01, 3 * handshake_seconds))
    sock.settimeout(settle)
    try:
        data = sock.recv(1)
    except TimeoutError:
        sock.settimeout(timeout)
        return  # nothing said: accepted
    except ssl.SSLError as exc:
        raise RefusedAfterHandshake(f"TLS error: {exc.reason or type(exc).__name__}") from exc
    raise RefusedAfterHandshake("TLS error: closed after the handshake" if not data else "TLS error: unexpected data")


class Connection:
    """One connection to the SIEM: `write` as many frames as wanted, then `finish` (the acceptance test).

    Nothing written counts as accepted before `finish` returned; `close` drops the connection after a failure.
    """

    def __init__(self, endpoint: Endpoint, *, timeout: float | None = None, context=None):
        self.timeout = settings.SIEM_TIMEOUT_SECONDS if timeout is None else timeout
        self.raw = _connect(endpoint, self.timeout)
        self.sock = self.raw
        try:
            if endpoint.scheme == "tls":
                started = time.monotonic()
                self.sock = (context or tls_context()).wrap_socket(self.raw, server_hostname=endpoint.host)
                _await_verdict(self.sock, self.timeout, time.monotonic() - started)
        except BaseException:
            self.raw.close()
            raise

    def write(self, frames: list[bytes]) -> None:
        self.sock.sendall(b"".join(frames))

    def finish(self) -> None:
        """Close our side and wait for the server to close in answer; raises on a timeout, reset or error."""
        try:
            if isinstance(self.sock, ssl.SSLSocket):
                try:
                    plain = self.sock.unwrap()  # our close_notify; returns once the server answered with its own
                except (ssl.SSLEOFError, ssl.SSLZeroReturnError):
                    return  # the server closed the connection in answer (rsyslog does so without close_notify)
                plain.shutdown(socket.SHUT_WR)
                _await_close(plain)
            else:
                self.raw.shutdown(socket.SHUT_WR)
                _await_close(self.raw)
        finally:
            self.raw.close()

    def close(self) -> None:
        self.raw.close()


def send(endpoint: Endpoint, frames: list[bytes], *, timeout: float | None = None, context=None) -> None:
    """Send the frames on one connection and wait for the server to close it in answer; raises on failure."""
    connection = Connection(endpoint, timeout=timeout, context=context)
    try:
        connection.write(frames)
    except BaseException:
        connection.close()
        raise
    connection.finish()


def failure_text(exc: BaseException) -> str:
    """What is stored and shown of a failed send: the kind of failure, never an internal address."""
    if isinstance(exc, outbound_url.OutboundRefused | RefusedAfterHandshake):
        return str(exc)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate refused: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error: {exc.reason or type(exc).__name__}"
    if isinstance(exc, TimeoutError | socket.timeout):
        return outbound_url.TIMEOUT_TEXT
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError | BrokenPipeError):
        return "connection reset"
    if isinstance(exc, socket.gaierror):
        return "host name cannot be resolved"
    return outbound_url.CONNECTION_TEXT
