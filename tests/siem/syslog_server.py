"""A real rsyslog for the SIEM tests and the benchmark: unprivileged, in the foreground, with its own config.

It listens with imtcp on a plain TCP port and (with gnutls) on a TLS port, and writes every message it parsed
as an RFC 5424 line (rsyslog's RSYSLOG_SyslogProtocol23Format, rebuilt from the parsed properties) to a file.
The test CA and certificates are made here with `cryptography`.
"""

import datetime
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

RSYSLOGD = os.environ.get("RSYSLOGD", "/usr/sbin/rsyslogd")
GTLS_MODULE = "/usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_gtls.so"


def available() -> bool:
    return Path(RSYSLOGD).exists()


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write_key(key, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


@dataclass
class Pki:
    ca_file: Path
    cert_file: Path
    key_file: Path


def make_pki(folder: Path, *, prefix: str, cn: str = "localhost", client: bool = False) -> Pki:
    """A CA and one certificate it signed for the name `cn` (its only SAN: 127.0.0.1 is not in it)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name(f"{prefix} test CA"))
        .issuer_name(_name(f"{prefix} test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    usage = x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH if client else x509.oid.ExtendedKeyUsageOID.SERVER_AUTH
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(cn)]),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    pki = Pki(folder / f"{prefix}-ca.pem", folder / f"{prefix}-cert.pem", folder / f"{prefix}-key.pem")
    pki.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    pki.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(key, pki.key_file)
    return pki


# Rebuilt from the properties rsyslog parsed: a message it had not read as RFC 5424 would not come out like this.
TEMPLATE = "<%PRI%>1 %TIMESTAMP:::date-rfc3339% %HOSTNAME% %APP-NAME% %PROCID% %MSGID% %STRUCTURED-DATA% %msg%\\n"
CONFIG = """
global(workDirectory="{work}" maxMessageSize="256k"
       DefaultNetstreamDriverCAFile="{ca}" DefaultNetstreamDriverCertFile="{cert}"
       DefaultNetstreamDriverKeyFile="{key}")
module(load="imtcp" maxSessions="50")
input(type="imtcp" port="{tcp_port}" address="127.0.0.1" ruleset="out")
input(type="imtcp" port="{tls_port}" address="127.0.0.1" ruleset="out"
      streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="{auth_mode}"{peers})
template(name="rfc5424" type="string" string="{template}")
ruleset(name="out") {{
  action(type="omfile" file="{out}" template="rfc5424" flushOnTXEnd="on" asyncWriting="off")
}}
"""


class Rsyslog:
    """rsyslogd in the foreground; `lines()` reads what it wrote, `wait_for(n)` waits for n lines."""

    def __init__(self, folder: Path, *, tcp_port: int, tls_port: int, server: Pki, client_ca: Pki | None = None):
        self.folder = folder
        self.tcp_port, self.tls_port = tcp_port, tls_port
        self.server = server
        self.client_ca = client_ca
        self.out = folder / "received.log"
        self.proc = None

    def config(self) -> str:
        # x509/certvalid: a client must present a certificate the CA signed; anon: no client certificate.
        auth_mode = "x509/certvalid" if self.client_ca else "anon"
        ca = self.client_ca.ca_file if self.client_ca else self.server.ca_file
        if self.client_ca:
            # One CA file for rsyslog: the server's chain is not checked by clients through it here.
            bundle = self.folder / "rsyslog-ca.pem"
            bundle.write_bytes(self.client_ca.ca_file.read_bytes() + self.server.ca_file.read_bytes())
            ca = bundle
        return CONFIG.format(
            work=self.folder / "work", ca=ca, cert=self.server.cert_file, key=self.server.key_file,
            tcp_port=self.tcp_port, tls_port=self.tls_port, auth_mode=auth_mode, peers="", out=self.out,
            template=TEMPLATE,
        )  # fmt: skip

    def start(self) -> "Rsyslog":
        (self.folder / "work").mkdir(parents=True, exist_ok=True)
        conf = self.folder / "rsyslog.conf"
        conf.write_text(self.config())
        with open(self.folder / "rsyslog.err", "ab") as err:
            self.proc = subprocess.Popen(
                [RSYSLOGD, "-n", "-f", str(conf), "-i", str(self.folder / "rsyslog.pid")],
                stdout=subprocess.DEVNULL, stderr=err,
                env={**os.environ, "RSYSLOG_MODDIR": os.path.dirname(GTLS_MODULE)},
            )  # fmt: skip
        deadline = time.monotonic() + 15
        for port in (self.tcp_port, self.tls_port):
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"rsyslogd exited: {(self.folder / 'rsyslog.err').read_text()[-2000:]}")
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"rsyslogd does not listen on {port}") from None
                    time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def lines(self) -> list[str]:
        if not self.out.exists():
            return []
        return [line for line in self.out.read_text(encoding="utf-8").split("\n") if line]

    def wait_for(self, count: int, timeout: float = 20.0) -> list[str]:
        """Wait (polling the file, not sleeping blind) until at least `count` lines are written."""
        deadline = time.monotonic() + timeout
        while True:
            lines = self.lines()
            if len(lines) >= count or time.monotonic() > deadline:
                return lines
            time.sleep(0.01)
