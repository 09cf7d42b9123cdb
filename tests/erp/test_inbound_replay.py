"""ERP inbound replays: a captured signed message re-sent later must not move a job back (issue 11)."""

import json
import time

import pytest
from django.utils import timezone

from apps.erp import signing
from apps.erp.models import Direction, ErpSync
from apps.jobs.models import JobStatus
from tests import factories

from . import inbound_helpers
from .inbound_helpers import CURRENT, NEXT, problem, send

profile = inbound_helpers.profile  # the fixture

pytestmark = pytest.mark.django_db


@pytest.fixture
def job(tenant_a):
    return factories.JobFactory(tenant=tenant_a, external_id="ERP-200")


def running(job, **extra):
    return {"job_id": job.external_id, "status": "running", "progress": 20, **extra}


def send_timestamped(client, payload, *, secret=CURRENT, timestamp=None, **headers):
    body = json.dumps(payload).encode()
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    signature = signing.x_signature(secret, signing.timestamped_content(stamp, body))
    return send(client, body, signature=signature, x_signature_timestamp=stamp, **headers)


def test_a_captured_lower_progress_resent_with_a_new_request_id_does_not_roll_the_job_back(client, profile, job):
    captured = json.dumps(running(job, progress=20)).encode()
    signature = signing.x_signature(CURRENT, captured)
    assert send(client, captured, signature=signature, x_request_id="erp-msg-20").status_code == 200
    assert send(client, running(job, progress=70), secret=CURRENT, x_request_id="erp-msg-70").status_code == 200
    for request_id in ("attacker-new-id-1", None):
        headers = {"x_request_id": request_id} if request_id else {}
        body = problem(send(client, captured, signature=signature, **headers), 422, "invalid-progress")
        assert "correction" in body["detail"]
    job.refresh_from_db()
    assert (job.status, job.progress) == (JobStatus.RUNNING, 70)
    refused = ErpSync.objects.filter(direction=Direction.INBOUND, response_code=422)
    assert refused.count() == 2 and not refused.filter(applied=True).exists()


def test_a_correction_may_move_progress_back(client, profile, job):
    assert send(client, running(job, progress=70)).status_code == 200
    assert send(client, running(job, progress=40, correction=True)).status_code == 200
    job.refresh_from_db()
    assert job.progress == 40


def test_progress_may_go_back_when_the_status_changes(client, profile, job):
    assert send(client, running(job, progress=70)).status_code == 200
    assert send(client, {"job_id": job.external_id, "status": "paused", "progress": 10}).status_code == 200
    job.refresh_from_db()
    assert (job.status, job.progress) == (JobStatus.PAUSED, 10)


def test_a_correction_applies_even_when_older_than_the_last_message(client, profile, job):
    now = timezone.now()
    assert send(client, running(job, progress=70, ext_ts=now.isoformat())).status_code == 200
    old = (now - timezone.timedelta(minutes=5)).isoformat()
    assert send(client, running(job, progress=30, ext_ts=old)).status_code == 200
    job.refresh_from_db()
    assert job.progress == 70
    assert send(client, running(job, progress=30, ext_ts=old, correction=True)).status_code == 200
    job.refresh_from_db()
    assert job.progress == 30


def test_a_timestamped_signature_within_the_window_is_accepted(client, profile, job):
    assert send_timestamped(client, running(job)).status_code == 200
    assert send_timestamped(client, running(job, progress=30), secret=NEXT).status_code == 200
    job.refresh_from_db()
    assert job.progress == 30


@pytest.mark.parametrize("offset", [-301, 301, -(10**6)])
def test_a_timestamp_outside_the_tolerance_is_refused(client, profile, job, offset):
    response = send_timestamped(client, running(job), timestamp=int(time.time()) + offset)
    assert problem(response, 401, "signature-expired")["tolerance_seconds"] == 300
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED


def test_the_tolerance_is_a_setting(client, profile, job, settings):
    settings.ERP_INBOUND_SIGNATURE_TOLERANCE_SECONDS = 30
    problem(send_timestamped(client, running(job), timestamp=int(time.time()) - 60), 401, "signature-expired")


def test_the_timestamp_is_covered_by_the_signature(client, profile, job):
    body = json.dumps(running(job)).encode()
    stamp = str(int(time.time()))
    # Signed over the body alone, or over another timestamp: a timestamp cannot be attached or swapped.
    for signature in (
        signing.x_signature(CURRENT, body),
        signing.x_signature(CURRENT, f"{int(stamp) - 1}.".encode() + body),
    ):
        problem(send(client, body, signature=signature, x_signature_timestamp=stamp), 401, "invalid-signature")


@pytest.mark.parametrize("stamp", ["", "abc", "1.5", "-5", "١٢٣", "9" * 13])
def test_a_malformed_timestamp_is_401(client, profile, job, stamp):
    body = json.dumps(running(job)).encode()
    signature = signing.x_signature(CURRENT, body)
    problem(send(client, body, signature=signature, x_signature_timestamp=stamp), 401, "invalid-signature")


def test_a_timestamp_without_a_signature_is_401(client, profile, job):
    problem(send(client, running(job), x_signature_timestamp=str(int(time.time()))), 401, "invalid-signature")


@pytest.mark.parametrize("signature", ["ü" * 44, "sig\u00e9nature==", "\x80\x81"])
def test_a_non_ascii_signature_is_401_not_500(client, profile, job, signature):
    problem(send(client, running(job), signature=signature), 401, "invalid-signature")


def test_the_same_idempotency_key_with_another_body_is_422(client, profile, job):
    assert send(client, running(job), idempotency_key="erp-key-1").status_code == 200
    again = send(client, running(job), idempotency_key="erp-key-1")
    assert again.status_code == 200 and again["Idempotent-Replayed"] == "true"
    problem(send(client, running(job, progress=90), idempotency_key="erp-key-1"), 422, "idempotency-key-reused")
    job.refresh_from_db()
    assert job.progress == 20


def test_idempotency_keys_belong_to_the_profile(client, profile, job, tenant_b):
    from apps.erp import inbound_services
    from apps.erp.models import IntegrationProfile

    other = IntegrationProfile.objects.create(tenant=tenant_b, name="bogazici-erp", ip_allowlist="127.0.0.1/32")
    inbound_services.set_inbound_token(other, "inbound-token-of-bogazici-9876543210")
    other_job = factories.JobFactory(tenant=tenant_b, external_id="ERP-200")
    assert send(client, running(job), idempotency_key="shared-erp-key").status_code == 200
    response = send(
        client, running(other_job), token="inbound-token-of-bogazici-9876543210", idempotency_key="shared-erp-key"
    )
    assert response.status_code == 200 and "Idempotent-Replayed" not in response
    other_job.refresh_from_db()
    assert other_job.status == JobStatus.RUNNING
