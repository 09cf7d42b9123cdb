"""The envelope, the RFC 5424 rendering and octet counting, and collection order (no syslog server needed)."""

import pytest

from apps.audit import services as audit
from apps.siem import envelope, rfc5424, services
from apps.siem.models import SiemRecord

from . import rfc5424_lines


def _env(**overrides):
    base = {
        "schema_ver": 1, "event_id": "7d0c2f52-8a8e-5f55-9d5a-1d6a4c1c7a01", "ts": "2026-12-02T07:00:00.000000Z",
        "level": "WARNING", "svc": "tezgah", "host": "web 1\u00e7", "req_id": "abc12345", "trace_id": "",
        "actor": {"type": "user", "id": "42"}, "event": 'odd "event"] \\ name',
        "payload_redacted": {"note": "Çağrı Şimşek, İzmir"},
    }  # fmt: skip
    return {**base, **overrides}


def test_octet_counting_counts_bytes_not_characters():
    message = rfc5424.message(_env(), msgid="audit")
    framed = rfc5424.frame(message)
    length, _, rest = framed.partition(b" ")
    assert int(length) == len(rest) == len(message) > len(message.decode())
    assert rfc5424.read_frames(framed * 3) == [message] * 3


def test_header_fields_are_printable_ascii_and_sd_values_are_escaped():
    line = rfc5424.message(_env(), msgid="audit", facility=10, sd_id="tezgah@12345").decode()
    parsed = rfc5424_lines.parse(line)
    assert parsed["pri"] == 10 * 8 + 4
    assert parsed["host"] == "web_1_"  # space and non-ASCII replaced in the header
    assert parsed["sd"]["tezgah@12345"]["event"] == 'odd "event"] \\ name'
    assert parsed["sd"]["tezgah@12345"]["actor"] == "user:42"
    assert "trace" not in parsed["sd"]["tezgah@12345"]  # empty params are left out
    assert rfc5424_lines.envelope(line)["payload_redacted"]["note"] == "Çağrı Şimşek, İzmir"
    assert 'actor="user:42"] \ufeff{' in line  # MSG is UTF-8 with its BOM


@pytest.mark.parametrize(
    ("action", "level"),
    [("security.admin_ip_refused", "WARNING"), ("incident_lock.on", "WARNING"), ("erp.inbound.refused", "WARNING"),
     ("erp.sync.dead", "ERROR"), ("jobs.job.updated", "INFO"), ("erp.key.replaced", "INFO"),
     ("erp.dlq.moved", "ERROR"), ("erp.delivery.failed", "WARNING"), ("erp.breaker.opened", "WARNING"),
     ("erp.breaker.closed", "INFO")],
)  # fmt: skip
def test_levels(action, level):
    assert envelope.level_for(action) == level


@pytest.mark.django_db
def test_collection_keeps_checkpoints_after_their_entries_across_batches(settings, tmp_path):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from tests.audit.conftest import pem

    settings.AUDIT_SIGNING_KEY = pem(Ed25519PrivateKey.generate())
    settings.AUDIT_WITNESS_FILE = str(tmp_path / "witness.json")
    for i in range(3):
        audit.record(None, "jobs.job.updated", None, {"i": i, "email": "x@ornek.com.tr"})
    audit.seal_pending()
    audit.make_checkpoint(force=True)
    for i in range(2):
        audit.record(None, "jobs.job.updated", None, {"i": i + 3})
    audit.seal_pending()
    assert services.collect(batch=2) == 6
    assert services.collect(batch=2) == 0  # nothing twice
    rows = list(SiemRecord.objects.order_by("pk").values_list("source", "source_ref"))
    assert rows == [("audit", 1), ("audit", 2), ("audit", 3), ("checkpoint", 3), ("audit", 4), ("audit", 5)]
    first = SiemRecord.objects.order_by("pk").first()
    assert first.envelope["payload_redacted"]["data"]["email"] == "[PERSONAL]"
    assert first.event_id == envelope.event_id("audit", 1)
    assert rfc5424_lines.envelope(first.message) == first.envelope


def _entry(**fields):
    from django.utils import timezone

    from apps.audit.models import AuditLog

    base = {"seq": 7, "ts": timezone.now(), "actor_type": "system", "action": "erp.dlq.moved", "payload": {}}
    return AuditLog(**{**base, **fields})


def test_every_record_carries_a_trace_id_the_payloads_first():
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    assert envelope.for_audit_entry(_entry(payload={"trace_id": trace}, request_id="r-123456789"))["trace_id"] == trace
    # No trace in the payload: the portal's own request ids (uuid4 hex) are the trace id as they are.
    own = "8a36dcab0c0e4c1d9b1f00aa11bb22cc"
    assert envelope.for_audit_entry(_entry(request_id=own))["trace_id"] == own
    # A caller's request id of another form: derived, the same for every record of that request.
    a = envelope.for_audit_entry(_entry(request_id="caller-req-0001"))["trace_id"]
    b = envelope.for_audit_entry(_entry(seq=8, request_id="caller-req-0001"))["trace_id"]
    assert a == b and len(a) == 32 and int(a, 16)
    # No request at all (a beat task): derived from the record's own event id, never empty.
    none = envelope.for_audit_entry(_entry(request_id=""))["trace_id"]
    assert len(none) == 32 and none != a
    assert envelope.for_audit_entry(_entry(payload={"trace_id": "not-a-trace"}, request_id=own))["trace_id"] == own
