"""Shipping to a real rsyslog over TCP and TLS: RFC 5424 with structured data, outages, certificates."""

import json
import shutil

import pytest
from django.core.management import call_command

from apps.audit import services as audit
from apps.siem import selectors, services, tasks
from apps.siem.models import SiemDestination, SiemRecord

from . import rfc5424_lines
from .conftest import start_rsyslog

pytestmark = pytest.mark.django_db

SD_ID = "tezgah@32473"


@pytest.fixture
def siem(settings, rsyslog, pki):
    """Point SIEM_ENDPOINT at the module's rsyslog; `use("tcp"|"tls")`; returns the lines written since."""
    settings.SIEM_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.SIEM_CA_FILE = str(pki["server"].ca_file)
    settings.SIEM_HOSTNAME = "tezgah-test"
    start = len(rsyslog.lines())

    class Siem:
        server = rsyslog

        def use(self, scheme, server=None):
            server = server or rsyslog
            port = server.tls_port if scheme == "tls" else server.tcp_port
            settings.SIEM_ENDPOINT = f"{scheme}://127.0.0.1:{port}" if scheme == "tcp" else f"tls://localhost:{port}"
            settings.SIEM_ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

        def new_lines(self, count):
            return rsyslog.wait_for(start + count)[start:]

    return Siem()


def _entries(n, *, prefix="jobs.job.updated"):
    for i in range(n):
        audit.record(
            None, prefix, None,
            {"i": i, "note": f"Müşteri Ayşe Yılmaz ayse.yilmaz@ornek.com.tr 0532 412 33 21 TCKN 10000000146 #{i}",
             "token": "s3cret-token-value"},
            object_type="jobs.job", object_id=str(1000 + i),
        )  # fmt: skip
    return audit.seal_pending()


@pytest.mark.parametrize("scheme", ["tcp", "tls"])
def test_records_arrive_as_rfc5424_with_structured_data_intact(siem, scheme):
    siem.use(scheme)
    _entries(3)
    assert services.ship() == 3
    lines = siem.new_lines(3)
    assert len(lines) == 3
    records = list(SiemRecord.objects.order_by("pk"))
    for line, record in zip(lines, records, strict=True):
        parsed = rfc5424_lines.parse(line)
        assert parsed["app"] == "tezgah" and parsed["host"] == "tezgah-test" and parsed["msgid"] == "audit"
        assert parsed["pri"] == 13 * 8 + 6  # log audit, informational
        assert parsed["sd"][SD_ID] == {
            "eid": str(record.event_id), "ver": "1", "event": "jobs.job.updated", "actor": "system",
            "trace": record.envelope["trace_id"],  # always present: derived when the entry has no request
        }  # fmt: skip
        assert len(record.envelope["trace_id"]) == 32
        envelope = json.loads(parsed["msg"])
        assert envelope == record.envelope
        assert set(envelope) == {"schema_ver", "event_id", "ts", "level", "svc", "host", "req_id", "trace_id",
                                 "actor", "event", "payload_redacted"}  # fmt: skip
        note = envelope["payload_redacted"]["data"]["note"]
        assert note.startswith("Müşteri Ayşe Yılmaz [EMAIL] [PHONE] TCKN [TCKN] #")
        assert envelope["payload_redacted"]["data"]["token"] == "[SECRET]"
    assert "ayse.yilmaz@ornek.com.tr" not in "".join(lines) and "s3cret" not in "".join(lines)
    dest = SiemDestination.objects.get()
    assert dest.last_sent_id == records[-1].pk and dest.last_error == ""
    assert selectors.backlog_count() == 0 and selectors.backlog_age_seconds() == 0.0


def test_signed_checkpoints_are_shipped_after_the_entries_they_cover(siem, settings, tmp_path):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from tests.audit.conftest import pem

    settings.AUDIT_SIGNING_KEY = pem(Ed25519PrivateKey.generate())
    settings.AUDIT_WITNESS_FILE = str(tmp_path / "witness.json")
    siem.use("tls")
    _entries(2)
    checkpoint = audit.make_checkpoint(force=True)
    _entries(1, prefix="security.admin_ip_refused")
    assert services.ship() == 4
    lines = siem.new_lines(4)
    events = [rfc5424_lines.envelope(line)["event"] for line in lines]
    assert events == ["jobs.job.updated", "jobs.job.updated", "audit.checkpoint", "security.admin_ip_refused"]
    witness = rfc5424_lines.envelope(lines[2])["payload_redacted"]
    assert witness == audit.checkpoint_witness(checkpoint)
    assert rfc5424_lines.parse(lines[3])["pri"] == 13 * 8 + 4  # a security event is a warning


def test_an_outage_leaves_records_waiting_and_they_arrive_in_order_once_the_siem_is_back(siem, settings, tmp_path, pki):
    settings.SIEM_BREAKER_FAILURES = 1
    settings.SIEM_BREAKER_COOLDOWN_SECONDS = 0
    settings.SIEM_BATCH_SIZE = 4
    server = start_rsyslog(tmp_path / "down", pki)
    siem.use("tls", server)
    try:
        _entries(3)
        assert tasks.ship_siem() == 3
        server.wait_for(3)
        server.stop()  # the SIEM goes away

        _entries(7)
        assert tasks.ship_siem() == 0
        dest = SiemDestination.objects.get()
        assert dest.last_error == "connection refused" and dest.consecutive_failures == 1
        assert selectors.backlog_count() == 7
        assert selectors.backlog_age_seconds() > 0
        assert tasks.ship_siem() == 0  # still down: nothing moves, nothing is lost

        server.start()  # back, on the same ports
        settings.SIEM_SHIP_MAX_RECORDS = 4  # one run takes at most one batch here: two beat runs
        assert tasks.ship_siem() == 4
        assert tasks.ship_siem() == 3
        assert tasks.ship_siem() == 0
        lines = server.wait_for(10)
    finally:
        server.stop()
        shutil.rmtree(tmp_path / "down", ignore_errors=True)
    seqs = [rfc5424_lines.envelope(line)["payload_redacted"]["seq"] for line in lines]
    assert seqs == list(range(seqs[0], seqs[0] + 10))  # every record, in order, none twice
    dest.refresh_from_db()
    assert dest.last_error == "" and selectors.backlog_count() == 0


def test_a_server_certificate_from_another_ca_is_refused_and_records_wait(siem, settings, pki):
    siem.use("tls")
    settings.SIEM_CA_FILE = str(pki["other"].ca_file)
    _entries(2)
    assert services.ship() == 0
    dest = SiemDestination.objects.get()
    assert dest.last_error.startswith("TLS certificate refused")
    assert selectors.backlog_count() == 2
    settings.SIEM_CA_FILE = str(pki["server"].ca_file)
    assert services.ship() == 2


def test_a_name_the_certificate_does_not_hold_is_refused(siem, settings):
    siem.use("tls")
    settings.SIEM_ENDPOINT = settings.SIEM_ENDPOINT.replace("localhost", "127.0.0.1")  # the certificate: localhost
    _entries(1)
    assert services.ship() == 0
    assert SiemDestination.objects.get().last_error.startswith("TLS certificate refused")


def test_a_loopback_siem_not_in_the_allowlist_is_refused(siem, settings):
    siem.use("tcp")
    settings.SIEM_ALLOWED_HOSTS = []
    _entries(1)
    assert services.ship() == 0
    assert "SIEM_ALLOWED_HOSTS" in SiemDestination.objects.get().last_error


def test_replay_re_sends_a_range_and_the_cursor_stays(siem, capsys):
    siem.use("tcp")
    _entries(2)
    _entries(2, prefix="security.sign_in_throttled")
    assert services.ship() == 4
    siem.new_lines(4)
    last_sent = SiemDestination.objects.get().last_sent_id
    call_command("siem_replay", "--since", "2000-01-01", "--event", "security.*", "--reason", "SIEM lost a day")
    assert "2 records sent" in capsys.readouterr().out
    lines = siem.new_lines(6)
    replayed = [rfc5424_lines.envelope(line) for line in lines[4:]]
    assert [e["event"] for e in replayed] == ["security.sign_in_throttled"] * 2
    originals = [rfc5424_lines.envelope(line) for line in lines[2:4]]
    assert [e["event_id"] for e in replayed] == [e["event_id"] for e in originals]  # the SIEM can drop them
    assert SiemDestination.objects.get().last_sent_id == last_sent
    audit.seal_pending()
    from apps.audit.models import AuditLog

    entry = AuditLog.objects.filter(action="siem.replayed").get()
    assert entry.payload["records"] == 2 and entry.payload["reason"] == "SIEM lost a day"


def test_nothing_is_collected_or_sent_without_an_endpoint(settings):
    settings.SIEM_ENDPOINT = ""
    _entries(1)
    assert services.ship() == 0
    assert SiemRecord.objects.count() == 0
    assert selectors.backlog_age_seconds() == 0.0


@pytest.fixture
def rsyslog_wanting_client_certs(tmp_path, pki):
    server = start_rsyslog(tmp_path / "mtls", pki, client_ca=pki["client"])
    yield server
    server.stop()
    shutil.rmtree(tmp_path / "mtls", ignore_errors=True)


def test_a_siem_that_wants_a_client_certificate_gets_it(siem, settings, pki, rsyslog_wanting_client_certs):
    server = rsyslog_wanting_client_certs
    siem.use("tls", server)
    _entries(2)
    assert services.ship() == 0  # no client certificate: refused, the records wait
    # rsyslog ends the handshake (a TLS alert, or a reset of the bytes it never read): either way not accepted.
    assert SiemDestination.objects.get().last_error.startswith(("TLS error", "connection reset"))
    assert server.lines() == [] and selectors.backlog_count() == 2
    settings.SIEM_CLIENT_CERT_FILE = str(pki["client"].cert_file)
    settings.SIEM_CLIENT_KEY_FILE = str(pki["client"].key_file)
    assert services.ship() == 2
    assert len(server.wait_for(2)) == 2
