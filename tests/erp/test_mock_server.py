"""The mock ERP process itself: the contract's two endpoints, signature checks, failure modes, its log."""

import base64
import hashlib
import hmac
import json
import subprocess
import sys

import requests

from .conftest import ROOT, SECRET, start_mock


def signed(body: bytes, secret=SECRET) -> dict:
    sig = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    return {"X-Signature": sig, "Content-Type": "application/json", "Idempotency-Key": "k1", "X-Request-Id": "r1"}


def test_update_and_health_answer_as_the_contract_says(mock_erp):
    body = b'{"job_id":"J1","progress":5,"status":"running","updated_at":"2026-11-23T10:00:00+00:00"}'
    reply = requests.post(f"{mock_erp.url}/erp/v1/jobs/update", data=body, headers=signed(body), timeout=5)
    assert (reply.status_code, reply.json()) == (200, {"ok": True})
    health = requests.get(f"{mock_erp.url}/erp/v1/health", timeout=5)
    assert (health.status_code, health.text) == (200, "ok")
    [seen] = mock_erp.received()
    assert seen["headers"]["X-Request-Id"] == "r1" and seen["signature_verified"] is True
    assert seen["body"] == body.decode()


def test_a_bad_or_missing_signature_gets_401(mock_erp):
    body = b'{"job_id":"J1"}'
    tampered = requests.post(f"{mock_erp.url}/erp/v1/jobs/update", data=body + b" ", headers=signed(body), timeout=5)
    assert tampered.status_code == 401
    unsigned = requests.post(f"{mock_erp.url}/erp/v1/jobs/update", data=body, timeout=5)
    assert unsigned.status_code == 401
    assert [r["signature_verified"] for r in mock_erp.received()] == [False, False]


def test_the_next_key_verifies_too_during_a_rotation(mock_erp):
    from .conftest import NEXT_SECRET

    body = b"{}"
    reply = requests.post(f"{mock_erp.url}/erp/v1/jobs/update", data=body, headers=signed(body, NEXT_SECRET), timeout=5)
    assert reply.status_code == 200


def test_planned_failures_delays_and_retry_after(mock_erp):
    body = b"{}"
    mock_erp.plan(status=429, count=2, retry_after=7)
    mock_erp.plan(delay_ms=300)
    replies = [
        requests.post(f"{mock_erp.url}/erp/v1/jobs/update", data=body, headers=signed(body), timeout=5)
        for _ in range(4)
    ]
    assert [r.status_code for r in replies] == [429, 429, 200, 200]
    assert replies[0].headers["Retry-After"] == "7"
    assert replies[2].elapsed.total_seconds() >= 0.3
    mock_erp.set_health(False)
    assert requests.get(f"{mock_erp.url}/erp/v1/health", timeout=5).status_code == 503


def test_bad_control_input_is_refused(mock_erp):
    assert requests.post(f"{mock_erp.url}/_mock/plan", data=b"not json", timeout=5).status_code == 400
    assert requests.post(f"{mock_erp.url}/_mock/explode", json={}, timeout=5).status_code == 404


def test_failure_rate_and_the_jsonl_log(tmp_path):
    log = tmp_path / "mock.jsonl"
    mock = start_mock("--failure-rate", "1", "--log", str(log))
    try:
        reply = requests.post(f"{mock.url}/erp/v1/jobs/update", data=b"{}", timeout=5)
        assert reply.status_code == 503
    finally:
        mock.process.terminate()
        mock.process.wait(timeout=10)
    [line] = log.read_text().splitlines()
    assert json.loads(line)["status"] == 503


def test_an_impossible_failure_rate_is_refused():
    run = subprocess.run(
        [sys.executable, "-m", "apps.erp.mock_server", "--failure-rate", "2"], cwd=ROOT, capture_output=True, text=True
    )
    assert run.returncode != 0 and "between 0 and 1" in run.stderr


def test_standard_webhooks_headers_sign_with_both_keys(erp_profile, mock_erp, job, django_capture_on_commit_callbacks):
    from apps.erp import keyring
    from apps.erp.models import KeyState
    from apps.jobs import services as jobs

    from .conftest import NEXT_SECRET

    erp_profile.standard_webhooks = True
    erp_profile.save()
    keyring.add_key(erp_profile, NEXT_SECRET, state=KeyState.NEXT)
    with django_capture_on_commit_callbacks(execute=True):
        jobs.change_status(job, "running")
    [seen] = mock_erp.received()
    headers = seen["headers"]
    signed_content = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.{seen['body']}".encode()
    expected = [
        "v1," + base64.b64encode(hmac.new(s.encode(), signed_content, hashlib.sha256).digest()).decode()
        for s in (SECRET, NEXT_SECRET)
    ]
    assert headers["webhook-signature"].split(" ") == expected
    assert headers["webhook-id"] == headers["Idempotency-Key"]
