import os
import shutil
import socket

import pytest

from . import syslog_server

PORTS = range(18500, 18600)  # this app's test port range


def free_port() -> int:
    for port in PORTS:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 18500-18599")


def _two_ports():
    first = free_port()
    holder = socket.socket()
    holder.bind(("127.0.0.1", first))
    try:
        return first, free_port()
    finally:
        holder.close()


@pytest.fixture(scope="session")
def rsyslog_available():
    if not syslog_server.available():
        if os.environ.get("CI"):
            pytest.fail(f"{syslog_server.RSYSLOGD} is missing in CI (.ci/run installs rsyslog rsyslog-gnutls)")
        pytest.skip(f"rsyslogd is not installed ({syslog_server.RSYSLOGD}); apt-get install rsyslog rsyslog-gnutls")


@pytest.fixture(scope="session")
def pki(tmp_path_factory, rsyslog_available):
    folder = tmp_path_factory.mktemp("pki")
    return {
        "server": syslog_server.make_pki(folder, prefix="server"),
        "other": syslog_server.make_pki(folder, prefix="other"),
        "client": syslog_server.make_pki(folder, prefix="client", cn="tezgah-client", client=True),
    }


def start_rsyslog(folder, pki, **kwargs) -> syslog_server.Rsyslog:
    tcp_port, tls_port = _two_ports()
    return syslog_server.Rsyslog(folder, tcp_port=tcp_port, tls_port=tls_port, server=pki["server"], **kwargs).start()


@pytest.fixture(scope="module")
def rsyslog(tmp_path_factory, pki):
    folder = tmp_path_factory.mktemp("rsyslog")
    server = start_rsyslog(folder, pki)
    yield server
    server.stop()
    shutil.rmtree(folder, ignore_errors=True)
