"""API tokens: issued only to an MFA-verified session, rate-limited, usable as `Authorization: Token`, revocable."""

import json

import pytest
from knox.models import AuthToken
from rest_framework.test import APIClient

from tests import factories
from tests.conftest import verified_client

pytestmark = pytest.mark.django_db

TOKEN = "/api/v1/auth/token/"
REVOKE = "/api/v1/auth/token/revoke/"
REVOKE_ALL = "/api/v1/auth/token/revoke-all/"
JOBS = "/api/v1/jobs/"


def assert_problem(response, status: int, slug: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = json.loads(response.content)
    assert body["type"] == f"urn:tezgah:problem:{slug}"
    assert body["status"] == status and body["title"]
    assert body["request_id"] == response["X-Request-Id"]
    return body


@pytest.fixture
def operator(role_users):
    return role_users["operator"]


def token_client(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def issue(operator) -> str:
    response = verified_client(APIClient(), operator).post(TOKEN)
    assert response.status_code == 200, response.content
    return response.json()["token"]


def test_a_password_only_session_gets_no_token(operator):
    client = APIClient()
    client.force_login(operator)
    assert_problem(client.post(TOKEN), 403, "permission-denied")
    assert not AuthToken.objects.filter(user=operator).exists()


def test_a_verified_session_gets_a_token_that_authenticates_the_api(operator, tenant_a):
    job = factories.JobFactory(tenant=tenant_a)
    response = verified_client(APIClient(), operator).post(TOKEN)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"token", "expiry"}
    assert AuthToken.objects.filter(user=operator).count() == 1
    jobs = token_client(body["token"]).get(JOBS)
    assert jobs.status_code == 200
    assert [row["id"] for row in jobs.json()["results"]] == [str(job.public_id)]


def test_the_token_is_stored_hashed(operator):
    key = issue(operator)
    stored = AuthToken.objects.get(user=operator)
    assert key not in {stored.digest, stored.token_key}
    assert key.startswith(stored.token_key)


def test_without_a_session_no_token_is_issued(db):
    response = APIClient().post(TOKEN)
    assert response.status_code in (401, 403)
    assert_problem(response, response.status_code, "not-authenticated")
    assert not AuthToken.objects.exists()


def test_a_token_cannot_issue_another_token(operator):
    key = issue(operator)
    response = token_client(key).post(TOKEN)
    assert response.status_code in (401, 403)
    assert response["Content-Type"] == "application/problem+json"
    assert AuthToken.objects.filter(user=operator).count() == 1


def test_issuing_is_rate_limited_with_retry_after(role_users):
    # THROTTLE_TOKEN_RATE=5/min (pyproject's test env); the sixth request in the minute is throttled.
    client = verified_client(APIClient(), role_users["admin"])
    for _ in range(5):
        assert client.post(TOKEN).status_code == 200
    throttled = client.post(TOKEN)
    assert_problem(throttled, 429, "rate-limited")
    assert int(throttled["Retry-After"]) > 0
    assert AuthToken.objects.filter(user=role_users["admin"]).count() == 5


def test_the_per_user_token_limit_is_a_problem_too(operator, settings):
    for _ in range(settings.REST_KNOX["TOKEN_LIMIT_PER_USER"]):
        AuthToken.objects.create(user=operator)
    body = assert_problem(
        verified_client(APIClient(), operator).post(TOKEN, HTTP_ACCEPT_LANGUAGE="en"), 403, "permission-denied"
    )
    assert "token" in body["detail"].lower()


def test_revoking_a_token_stops_it_working(operator):
    key = issue(operator)
    other = issue(operator)
    assert token_client(key).post(REVOKE).status_code == 204
    assert_problem(token_client(key).get(JOBS), 401, "authentication-failed")
    assert token_client(other).get(JOBS).status_code == 200


def test_revoke_all_stops_every_token_of_the_user(operator, role_users):
    first, second = issue(operator), issue(operator)
    someone_else = issue(role_users["admin"])
    assert token_client(first).post(REVOKE_ALL).status_code == 204
    for key in (first, second):
        assert_problem(token_client(key).get(JOBS), 401, "authentication-failed")
    assert token_client(someone_else).get(JOBS).status_code == 200


def test_revoking_without_a_token_is_a_401_problem(db):
    assert_problem(APIClient().post(REVOKE), 401, "not-authenticated")
