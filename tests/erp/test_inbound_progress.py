"""POST /api/v1/erp/inbound/job/progress: IP, token, signature, schema (in that order), applied once."""

import json
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from apps.audit.models import AuditLog
from apps.core import incident_lock
from apps.erp import inbound_services
from apps.erp.models import Direction, ErpSync, IntegrationProfile
from apps.jobs.models import Job, JobStatus, JobStatusChange
from tests import factories

from . import inbound_helpers
from .inbound_helpers import CURRENT, NEXT, TOKEN, URL, problem, send

profile = inbound_helpers.profile  # the fixture

pytestmark = pytest.mark.django_db


@pytest.fixture
def job(tenant_a):
    return factories.JobFactory(tenant=tenant_a, external_id="ERP-100")


def running(job, **extra):
    return {"job_id": job.external_id, "status": "running", "progress": 25, **extra}


def inbound_rows():
    return ErpSync.objects.filter(direction=Direction.INBOUND)


def test_a_valid_signed_request_moves_the_job_with_audit_and_sync_rows(client, profile, job):
    response = send(client, running(job, message="started on press 3"), secret=CURRENT)
    assert response.status_code == 200
    assert response.json() == {"ok": True}
    job.refresh_from_db()
    assert (job.status, job.progress) == (JobStatus.RUNNING, 25)
    change = JobStatusChange.objects.get(job=job)
    assert change.source == "erp" and change.reason == "started on press 3"
    row = inbound_rows().get()
    assert row.job == job and row.profile == profile and row.tenant_id == job.tenant_id
    assert row.status == "acked" and row.response_code == 200 and row.applied is True
    assert len(row.body_sha256) == 64 and row.request_body["status"] == "running"
    entry = AuditLog.objects.get(action="erp.inbound.progress")
    assert entry.actor_type == "erp" and entry.object_id == str(job.pk)
    assert entry.payload["sync_id"] == row.pk and entry.payload["applied"] is True


def test_without_a_signature_header_the_token_and_address_suffice(client, profile, job):
    assert send(client, running(job)).status_code == 200


def test_the_next_key_verifies_too(client, profile, job):
    assert send(client, running(job), secret=NEXT).status_code == 200


def test_a_tampered_body_is_401_and_changes_nothing(client, profile, job):
    body = json.dumps(running(job)).encode()
    from apps.erp import signing

    signature = signing.x_signature(CURRENT, body)
    tampered = body.replace(b"25", b"99")
    problem(send(client, tampered, signature=signature), 401, "invalid-signature")
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED
    assert not inbound_rows().exists()


def test_a_signature_with_an_unknown_key_is_401(client, profile, job):
    problem(send(client, running(job), secret="someone-elses-key"), 401, "invalid-signature")


def test_a_profile_can_require_the_signature(client, profile, job):
    IntegrationProfile.objects.filter(pk=profile.pk).update(signature_required=True)
    problem(send(client, running(job)), 401, "invalid-signature")
    assert send(client, running(job), secret=CURRENT).status_code == 200


@pytest.mark.parametrize("token", ["wrong-token", "", None])
def test_a_bad_or_missing_token_is_401(client, profile, job, token):
    problem(send(client, running(job), token=token), 401, "authentication-failed")


def test_a_disabled_profile_is_401(client, profile, job):
    IntegrationProfile.objects.filter(pk=profile.pk).update(enabled=False)
    problem(send(client, running(job)), 401, "authentication-failed")


def test_an_address_outside_the_allowlist_is_403_before_anything_else(client, profile, job):
    problem(send(client, running(job), ip="203.0.113.9"), 403, "ip-not-allowed")
    # Order: IP first, so a stranger learns nothing about its token, signature or body.
    problem(send(client, b"not json", token="wrong", signature="bad", ip="203.0.113.9"), 403, "ip-not-allowed")


def test_the_token_is_checked_before_the_signature_and_the_body(client, profile, job):
    problem(send(client, b"not json", token="wrong", signature="bad"), 401, "authentication-failed")


def test_the_signature_is_checked_before_the_body(client, profile, job):
    problem(send(client, b"{}", signature="bad"), 401, "invalid-signature")


def test_behind_a_trusted_proxy_the_forwarded_address_is_checked(client, profile, job, settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    assert send(client, running(job), ip="10.0.0.5", x_forwarded_for="127.0.0.1").status_code == 200
    # A forged header from a peer that is no trusted proxy changes nothing.
    problem(send(client, running(job), ip="203.0.113.9", x_forwarded_for="127.0.0.1"), 403, "ip-not-allowed")


def test_an_empty_allowlist_admits_nobody(client, profile, job, settings):
    IntegrationProfile.objects.filter(pk=profile.pk).update(ip_allowlist="")
    settings.ERP_IP_ALLOWLIST = []
    problem(send(client, running(job)), 403, "ip-not-allowed")
    settings.ERP_IP_ALLOWLIST = ["127.0.0.0/8"]
    assert send(client, running(job)).status_code == 200


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"status": "running", "progress": 5}, "job_id"),
        ({"job_id": "ERP-100", "status": "flying", "progress": 5}, "status"),
        ({"job_id": "ERP-100", "status": "running", "progress": 101}, "progress"),
        ({"job_id": "ERP-100", "status": "running", "progress": -1}, "progress"),
        ({"job_id": "ERP-100", "status": "running", "progress": "half"}, "progress"),
        ({"job_id": "ERP-100", "status": "running", "progress": 5, "ext_ts": "yesterday"}, "ext_ts"),
        (b"{not json", "non_field_errors"),
        ([1, 2], "non_field_errors"),
        (b"null", "non_field_errors"),
        (b"", "non_field_errors"),
    ],
)
def test_a_schema_error_is_422_with_the_field_errors(client, profile, job, payload, field):
    body = problem(send(client, payload, secret=CURRENT), 422, "validation-error")
    assert field in body["errors"]
    assert not inbound_rows().exists()


def test_an_unknown_job_is_404(client, profile, job):
    problem(send(client, {"job_id": "ERP-NOPE", "status": "running", "progress": 1}), 404, "not-found")


def test_a_job_of_another_tenant_is_404(client, profile, tenant_b):
    other = factories.JobFactory(tenant=tenant_b, external_id="ERP-B1")
    problem(send(client, running(other)), 404, "not-found")
    other.refresh_from_db()
    assert other.status == JobStatus.QUEUED


def test_the_portal_id_finds_the_job_too(client, profile, job):
    assert send(client, {"job_id": str(job.public_id), "status": "running", "progress": 3}).status_code == 200


def test_an_illegal_transition_is_409_and_recorded(client, profile, job):
    body = problem(
        send(client, {"job_id": "ERP-100", "status": "succeeded", "progress": 100}), 409, "illegal-transition"
    )
    assert body["from_status"] == "queued" and body["to_status"] == "succeeded"
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED
    row = inbound_rows().get()
    assert row.status == "failed" and row.response_code == 409 and row.applied is False
    assert not AuditLog.objects.filter(action="erp.inbound.progress").exists()


def test_an_older_message_is_acknowledged_and_recorded_but_does_not_move_the_job_back(client, profile, job):
    now = timezone.now()
    newer = running(job, progress=60, ext_ts=now.isoformat())
    older = running(job, progress=30, ext_ts=(now - timedelta(minutes=5)).isoformat())
    assert send(client, newer).status_code == 200
    stale = send(client, older)
    assert stale.status_code == 200 and stale.json() == {"ok": True}
    job.refresh_from_db()
    assert job.progress == 60
    rows = list(inbound_rows().order_by("id"))
    assert [r.applied for r in rows] == [True, False]
    entries = AuditLog.objects.filter(action="erp.inbound.progress").order_by("id")
    assert [e.payload["applied"] for e in entries] == [True, False]
    # A later message applies again.
    assert send(client, running(job, progress=80, ext_ts=(now + timedelta(minutes=1)).isoformat())).status_code == 200
    job.refresh_from_db()
    assert job.progress == 80


def test_a_message_without_ext_ts_after_one_with_it_is_recorded_but_not_applied(client, profile, job):
    # Issue 11: it applied, so a captured message re-sent without its time moved the job.
    assert send(client, running(job, progress=60, ext_ts=timezone.now().isoformat())).status_code == 200
    response = send(client, running(job, progress=70))
    assert response.status_code == 200 and response.json() == {"ok": True}
    job.refresh_from_db()
    assert job.progress == 60, "without its time a message cannot be ordered after timed ones"
    assert list(inbound_rows().order_by("id").values_list("applied", flat=True)) == [True, False]
    assert send(client, running(job, progress=70, correction=True)).status_code == 200
    job.refresh_from_db()
    assert job.progress == 70, "a correction applies"


def test_a_repeat_whose_transition_is_now_illegal_still_gets_its_first_answer(client, profile, job):
    assert send(client, running(job, progress=10), x_request_id="erp-msg-000009").status_code == 200
    assert send(client, {"job_id": job.external_id, "status": "succeeded", "progress": 100}).status_code == 200
    again = send(client, running(job, progress=10), x_request_id="erp-msg-000009")
    assert again.status_code == 200 and again.json() == {"ok": True}, "running after succeeded is illegal now"
    job.refresh_from_db()
    assert job.status == "succeeded" and inbound_rows().count() == 2


def test_the_same_request_id_twice_returns_the_first_answer_and_applies_once(client, profile, job):
    first = send(client, running(job, progress=10), x_request_id="erp-msg-000001")
    again = send(client, running(job, progress=10), x_request_id="erp-msg-000001")
    assert first.status_code == again.status_code == 200
    assert again.json() == {"ok": True}
    assert inbound_rows().count() == 1
    assert AuditLog.objects.filter(action="erp.inbound.progress").count() == 1
    assert JobStatusChange.objects.filter(job=job).count() == 1


def test_a_repeated_refusal_is_answered_the_same(client, profile, job):
    payload = {"job_id": "ERP-100", "status": "succeeded", "progress": 100}
    problem(send(client, payload, x_request_id="erp-msg-000002"), 409, "illegal-transition")
    problem(send(client, payload, x_request_id="erp-msg-000002"), 409, "illegal-transition")
    assert inbound_rows().count() == 1


def test_the_same_idempotency_key_twice_returns_the_first_answer_and_applies_once(client, profile, job):
    first = send(client, running(job), idempotency_key="erp-key-1")
    again = send(client, running(job), idempotency_key="erp-key-1")
    assert first.status_code == again.status_code == 200
    assert again["Idempotent-Replayed"] == "true"
    assert inbound_rows().count() == 1
    assert JobStatusChange.objects.filter(job=job).count() == 1


def test_an_idempotency_key_already_applied_is_not_applied_again_after_the_stored_answer_expired(client, profile, job):
    from apps.core.models import IdempotencyRecord

    assert send(client, running(job, progress=10), idempotency_key="erp-key-2").status_code == 200
    IdempotencyRecord.objects.all().delete()  # the generic record expired; the sync row still knows
    again = send(client, running(job, progress=10), idempotency_key="erp-key-2")
    assert again.status_code == 200 and again["Idempotent-Replayed"] == "true"
    assert inbound_rows().count() == 1


def test_env_defaults_serve_a_deployment_without_profiles(client, tenant_a, settings):
    factories.JobFactory(tenant=tenant_a, external_id="ERP-ENV")
    settings.ERP_BEARER_TOKEN = "env-bearer-token"
    settings.ERP_IP_ALLOWLIST = ["127.0.0.1/32"]
    settings.KEYRING_CURRENT = "env-current"
    settings.KEYRING_NEXT = "env-next"
    payload = {"job_id": "ERP-ENV", "status": "running", "progress": 1}
    assert send(client, payload, token="env-bearer-token", secret="env-next").status_code == 200
    problem(send(client, payload, token="env-bearer-token", secret="other"), 401, "invalid-signature")
    assert inbound_rows().get().profile is None


def test_the_incident_lock_refuses_inbound_unless_it_is_an_allowed_emergency_op(client, profile, job, settings):
    incident_lock.set_lock(True, reason="drill")
    problem(send(client, running(job)), 423, "incident-lock")
    settings.INCIDENT_LOCK_EMERGENCY_OPS = [*settings.INCIDENT_LOCK_EMERGENCY_OPS, "erp.inbound"]
    assert send(client, running(job)).status_code == 200


def test_inbound_is_throttled_per_profile(client, profile, job, tenant_b, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "erp_inbound": "2/min"},
    }
    for progress in (1, 2):
        assert send(client, running(job, progress=progress)).status_code == 200
    throttled = send(client, running(job, progress=3))
    problem(throttled, 429, "rate-limited")
    assert int(throttled["Retry-After"]) > 0
    other = IntegrationProfile.objects.create(tenant=tenant_b, name="bogazici-erp", ip_allowlist="127.0.0.1/32")
    inbound_services.set_inbound_token(other, "bogazici-token-0123456789")
    b_job = factories.JobFactory(tenant=tenant_b, external_id="ERP-B2")
    assert send(client, running(b_job), token="bogazici-token-0123456789").status_code == 200


def test_the_token_is_stored_only_as_its_hash(profile):
    profile.refresh_from_db()
    assert TOKEN not in profile.inbound_token_sha256 and len(profile.inbound_token_sha256) == 64
    assert URL == "/api/v1/erp/inbound/job/progress"


def test_the_hand_read_job_row_is_the_one_the_orm_reads(client, profile, job):
    """_find_and_lock_job reads the row with its own SQL: every field must come back as the ORM gives it."""
    sent_at = timezone.now().replace(microsecond=0)
    assert send(client, running(job, progress=40, ext_ts=sent_at.isoformat())).status_code == 200
    with transaction.atomic():
        by_erp_id = inbound_services._find_and_lock_job(inbound_services.Caller(profile), job.external_id)
        by_portal_id = inbound_services._find_and_lock_job(inbound_services.Caller(profile), str(job.public_id))
    fresh = Job.objects.get(pk=job.pk)
    for found in (by_erp_id, by_portal_id):
        assert {f.attname: getattr(found, f.attname) for f in Job._meta.concrete_fields} == {
            f.attname: getattr(fresh, f.attname) for f in Job._meta.concrete_fields
        }
        assert found.last_ext_ts == sent_at and found.last_ext_ts.tzinfo is not None
        assert found._state.adding is False
