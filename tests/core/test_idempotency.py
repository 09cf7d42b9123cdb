"""Idempotency-Key on every mutating API endpoint: replays, conflicts, concurrency, expiry, coverage."""

import json
import threading
import time
from datetime import timedelta

import pytest
import requests
import time_machine
from django.db import connection, transaction
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st
from knox.models import AuthToken
from rest_framework.test import APIClient

from apps.core import idempotency
from apps.core.models import IdempotencyRecord, IdempotencyState
from apps.core.tasks import expire_idempotency_keys
from apps.jobs.models import Job, JobStatus, JobStatusChange
from tests import factories
from tests.conftest import make_user, verified_client

PROBLEM = "application/problem+json"


def status_url(job) -> str:
    return f"/api/v1/jobs/{job.public_id}/status"


def problem(response, status: int, slug: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM
    body = json.loads(response.content)
    assert body["type"] == f"urn:tezgah:problem:{slug}"
    return body


@pytest.fixture
def job(tenant_a):
    return factories.JobFactory(tenant=tenant_a)


@pytest.fixture
def api(role_users):
    return verified_client(APIClient(), role_users["operator"])


def post_status(client, job, body, key=None):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {}
    return client.post(status_url(job), body, format="json", **headers)


@pytest.mark.django_db
def test_a_replay_returns_the_first_response_marked_replayed_and_applies_once(api, job):
    first = post_status(api, job, {"status": "running", "progress": 10}, key="key-0001")
    assert first.status_code == 200
    assert "Idempotent-Replayed" not in first
    second = post_status(api, job, {"status": "running", "progress": 10}, key="key-0001")
    assert second.status_code == 200
    assert second["Idempotent-Replayed"] == "true"
    assert second["Content-Type"] == first["Content-Type"]
    assert json.loads(second.content) == json.loads(first.content)
    assert JobStatusChange.objects.filter(job=job).count() == 1
    record = IdempotencyRecord.objects.get(key="key-0001")
    assert record.state == IdempotencyState.DONE and record.status_code == 200
    assert b"running" not in bytes(record.response_body), "stored bodies are encrypted"


@pytest.mark.django_db
def test_the_same_key_with_a_different_body_is_a_422_and_changes_nothing(api, job):
    assert post_status(api, job, {"status": "running"}, key="key-0002").status_code == 200
    problem(post_status(api, job, {"status": "cancelled"}, key="key-0002"), 422, "idempotency-key-reused")
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING


@pytest.mark.django_db
def test_a_refusal_is_stored_and_replayed_too(api, job):
    # queued -> succeeded is illegal: the 409 is the answer to this key, replayed as it was.
    first = problem(post_status(api, job, {"status": "succeeded"}, key="key-0003"), 409, "illegal-transition")
    again = post_status(api, job, {"status": "succeeded"}, key="key-0003")
    assert again["Idempotent-Replayed"] == "true"
    assert problem(again, 409, "illegal-transition")["detail"] == first["detail"]


@pytest.mark.django_db
def test_keys_belong_to_one_caller(api, job, role_users, tenant_a):
    other = verified_client(APIClient(), make_user("operator_two", roles=["operator"], tenants=[tenant_a]))
    assert post_status(api, job, {"status": "running"}, key="shared-key").status_code == 200
    # The other caller's request with the same key is its own request, not a replay of the first's.
    response = post_status(other, job, {"status": "paused"}, key="shared-key")
    assert response.status_code == 200 and "Idempotent-Replayed" not in response
    assert IdempotencyRecord.objects.filter(key="shared-key").count() == 2


@pytest.mark.django_db
def test_without_a_key_every_request_runs(api, job):
    assert post_status(api, job, {"status": "running", "progress": 5}).status_code == 200
    assert post_status(api, job, {"status": "running", "progress": 6}).status_code == 200
    assert not IdempotencyRecord.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("key", ["", "x" * 256, "has space", "tab\tkey", "ünicode"])
def test_a_malformed_key_is_a_400_problem(api, job, key):
    response = api.post(status_url(job), {"status": "running"}, format="json", HTTP_IDEMPOTENCY_KEY=key)
    problem(response, 400, "invalid-idempotency-key")
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED


@pytest.mark.django_db
def test_unauthenticated_answers_are_not_stored(job):
    response = post_status(APIClient(), job, {"status": "running"}, key="key-0004")
    assert response.status_code in (401, 403)
    assert not IdempotencyRecord.objects.exists()


@pytest.mark.django_db
def test_token_issuing_is_idempotent_and_the_stored_token_is_not_readable(role_users):
    client = verified_client(APIClient(), role_users["admin"])
    first = client.post("/api/v1/auth/token/", HTTP_IDEMPOTENCY_KEY="token-key-1")
    second = client.post("/api/v1/auth/token/", HTTP_IDEMPOTENCY_KEY="token-key-1")
    assert first.status_code == second.status_code == 200
    assert second["Idempotent-Replayed"] == "true"
    assert first.json()["token"] == second.json()["token"]
    assert AuthToken.objects.filter(user=role_users["admin"]).count() == 1
    stored = bytes(IdempotencyRecord.objects.get(key="token-key-1").response_body)
    assert first.json()["token"].encode() not in stored


GATEWAY_BASIC = "Basic Z2F0ZXdheTpzaGFyZWQ="  # what a gateway in front of the portal may add to every request


@pytest.mark.django_db
def test_two_users_sending_the_same_gateway_header_and_key_never_get_each_others_token(tenant_a):
    # Issue 11: keys were scoped by the Authorization header's value, not by who the session authenticated.
    alice = verified_client(APIClient(), make_user("alice", roles=["admin"], tenants=[tenant_a]))
    mallory = verified_client(APIClient(), make_user("mallory", roles=["admin"], tenants=[tenant_a]))
    headers = {"HTTP_AUTHORIZATION": GATEWAY_BASIC, "HTTP_IDEMPOTENCY_KEY": "token-key-shared"}
    first = alice.post("/api/v1/auth/token/", **headers)
    second = mallory.post("/api/v1/auth/token/", **headers)
    assert first.status_code == second.status_code == 200
    assert "Idempotent-Replayed" not in second
    assert second.json()["token"] != first.json()["token"]
    # Each token authenticates its own user: mallory's answer was issued to mallory.
    for client_token, username in ((first.json()["token"], "alice"), (second.json()["token"], "mallory")):
        whoami = APIClient().get("/api/v1/jobs/", HTTP_AUTHORIZATION=f"Token {client_token}")
        assert whoami.status_code == 200, whoami.content
        assert AuthToken.objects.get(token_key=client_token[:15]).user.username == username
    owners = set(IdempotencyRecord.objects.filter(key="token-key-shared").values_list("owner", flat=True))
    assert len(owners) == 2
    # Alice's own retry is still a replay of her answer.
    again = alice.post("/api/v1/auth/token/", **headers)
    assert again["Idempotent-Replayed"] == "true" and again.json()["token"] == first.json()["token"]


@pytest.mark.django_db
def test_a_key_is_claimed_only_after_authentication(job):
    # A request DRF refuses (no session, only a presented header) claims nothing, so nobody can pre-empt a key.
    anonymous = APIClient()
    response = post_status(anonymous, job, {"status": "running"}, key="pre-auth-key")
    assert response.status_code in (401, 403)
    assert not IdempotencyRecord.objects.exists()


@pytest.mark.django_db
def test_the_owner_is_the_user_whatever_header_or_credential_it_sends(role_users, job):
    user = role_users["operator"]
    session = verified_client(APIClient(), user)
    _row, token = AuthToken.objects.create(user=user)
    by_token = APIClient()
    by_token.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    body = {"status": "running"}
    assert post_status(session, job, body, key="same-user-key").status_code == 200
    replay = post_status(by_token, job, body, key="same-user-key")
    assert replay["Idempotent-Replayed"] == "true"
    assert IdempotencyRecord.objects.get(key="same-user-key").owner == idempotency.owner_of(user)


@pytest.mark.django_db
def test_a_wrong_method_with_a_used_key_is_405_not_a_key_conflict(api, job):
    assert post_status(api, job, {"status": "running"}, key="key-method").status_code == 200
    response = api.put(status_url(job), {"status": "running"}, format="json", HTTP_IDEMPOTENCY_KEY="key-method")
    problem(response, 405, "method-not-allowed")
    response = api.patch(status_url(job), {"status": "x"}, format="json", HTTP_IDEMPOTENCY_KEY="bad key")
    problem(response, 405, "method-not-allowed")
    assert IdempotencyRecord.objects.filter(key="key-method").count() == 1


@pytest.mark.django_db
def test_a_key_in_use_is_a_409_problem_with_retry_after(api, job, role_users):
    assert post_status(api, job, {"status": "running"}, key="key-held").status_code == 200
    IdempotencyRecord.objects.filter(key="key-held").update(state=IdempotencyState.IN_PROGRESS)
    response = post_status(api, job, {"status": "running"}, key="key-held")
    problem(response, 409, "idempotency-key-in-use")
    assert response["Retry-After"] == "1"


@pytest.mark.django_db
def test_keys_expire_after_the_ttl_through_the_beat_task(api, job, settings):
    settings.IDEMPOTENCY_KEY_TTL_SECONDS = 3600
    assert post_status(api, job, {"status": "running"}, key="key-0005").status_code == 200
    assert expire_idempotency_keys.delay().get() == 0
    with time_machine.travel(timezone.now() + timedelta(seconds=3601)):
        assert expire_idempotency_keys.delay().get() == 1
        # An expired key is a new key: the request runs (and is refused by the state machine, not replayed).
        response = post_status(api, job, {"status": "running"}, key="key-0005")
        assert "Idempotent-Replayed" not in response
    assert not IdempotencyRecord.objects.filter(created_at__lt=timezone.now() - timedelta(hours=2)).exists()


def test_the_beat_schedule_runs_the_expiry_task(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["expire-idempotency-keys"]
    assert entry["task"] == "apps.core.tasks.expire_idempotency_keys"


@pytest.mark.django_db
def test_an_abandoned_claim_is_taken_over_after_the_claim_timeout(api, job, settings):
    settings.IDEMPOTENCY_CLAIM_TIMEOUT_SECONDS = 60
    # A claim left behind by a process that died: same caller, same key, never answered.
    response = post_status(api, job, {"status": "running"}, key="key-0006")
    record = IdempotencyRecord.objects.get(key="key-0006")
    IdempotencyRecord.objects.filter(pk=record.pk).update(state=IdempotencyState.IN_PROGRESS, status_code=None)
    problem(post_status(api, job, {"status": "running"}, key="key-0006"), 409, "idempotency-key-in-use")
    with time_machine.travel(timezone.now() + timedelta(seconds=61)):
        retried = post_status(api, job, {"status": "running"}, key="key-0006")
    assert response.status_code == 200
    assert "Idempotent-Replayed" not in retried


def _drf_mutating_views():
    """Every (route, view) of the URLconf whose view is a DRF view answering POST, PUT or PATCH."""
    from rest_framework.views import APIView

    found = []

    def walk(patterns, prefix=""):
        for entry in patterns:
            if isinstance(entry, URLResolver):
                walk(entry.url_patterns, prefix + str(entry.pattern))
            elif isinstance(entry, URLPattern):
                cls = getattr(entry.callback, "cls", None)
                if cls and issubclass(cls, APIView) and {"post", "put", "patch"} & {m for m in dir(cls)}:
                    found.append((prefix + str(entry.pattern), entry.callback))

    walk(get_resolver().url_patterns)
    return found


def test_every_mutating_drf_endpoint_takes_an_idempotency_key():
    views = _drf_mutating_views()
    assert any("jobs/<uuid:public_id>/status" in route for route, _ in views)
    assert any("auth/token/" in route for route, _ in views)
    missing = [route for route, view in views if not idempotency.applies_to(view)]
    # The ERP inbound API dedupes Idempotency-Key and X-Request-Id per integration profile itself
    # (apps/erp/inbound_services.py), in the transaction of the message's effects.
    assert missing == ["api/v1/erp/inbound/job/progress"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_requests_with_one_key_run_once_and_the_other_gets_409(live_server, tenant_a):
    job = factories.JobFactory(tenant=tenant_a)
    # A superuser: a transactional test's flush removed the role groups the migrations made.
    _token_row, token = AuthToken.objects.create(user=make_user("concurrent-root", superuser=True))
    headers = {"Authorization": f"Token {token}", "Idempotency-Key": "concurrent-1"}
    url = f"{live_server.url}{status_url(job)}"
    results = {}

    def first_request():
        results["first"] = requests.post(url, json={"status": "running"}, headers=headers, timeout=30)

    with transaction.atomic():
        # Hold the job's row lock: the first request claims the key, then waits inside change_status.
        Job.objects.select_for_update().get(pk=job.pk)
        thread = threading.Thread(target=first_request)
        thread.start()
        deadline = time.monotonic() + 10
        while not IdempotencyRecord.objects.filter(key="concurrent-1").exists():
            assert time.monotonic() < deadline, "the first request never claimed its key"
            time.sleep(0.02)
        second = requests.post(url, json={"status": "running"}, headers=headers, timeout=30)
        assert thread.is_alive(), "the first request is still waiting for the row lock"
    thread.join(timeout=30)
    assert connection.vendor == "postgresql"
    assert second.status_code == 409
    assert second.headers["Content-Type"] == PROBLEM
    assert second.json()["type"] == "urn:tezgah:problem:idempotency-key-in-use"
    assert second.headers["Retry-After"] == "1"
    assert results["first"].status_code == 200
    third = requests.post(url, json={"status": "running"}, headers=headers, timeout=30)
    assert third.status_code == 200 and third.headers["Idempotent-Replayed"] == "true"
    assert JobStatusChange.objects.filter(job=job).count() == 1


def test_endpoints_added_by_other_apps_are_covered_without_changes_to_them():
    routes = {route for route, _view in _drf_mutating_views()}
    assert "admin/erp/replay" in routes, "the lead's DLQ replay API (a DRF view) is covered automatically"


@given(
    parts=st.lists(st.binary(max_size=40), min_size=1, max_size=6),
    chunk=st.integers(min_value=1, max_value=64),
    boundary=st.sampled_from([b"B", b"xyz", b"----WebKitFormBoundary7MA4YWxkTrZu0gW"]),
)
def test_the_multipart_digest_is_the_same_for_any_boundary_and_any_chunking(parts, chunk, boundary):
    def body(b):
        return b"".join(b"--" + b + b"\r\n" + part + b"\r\n" for part in parts) + b"--" + b + b"--\r\n"

    def digest(data, b, size):
        hashed = idempotency._BoundaryFreeDigest(b)
        for start in range(0, len(data), size):
            hashed.update(data[start : start + size])
        return hashed.hexdigest()

    whole = digest(body(boundary), boundary, 10**6)
    assert digest(body(boundary), boundary, chunk) == whole
    other = b"Q" + boundary + b"Q"
    if not any(boundary in part or other in part for part in parts):
        assert digest(body(other), other, chunk) == whole
    changed = [parts[0] + b"!", *parts[1:]]
    assert digest(b"".join(b"--" + boundary + b"\r\n" + p + b"\r\n" for p in changed), boundary, chunk) != whole
