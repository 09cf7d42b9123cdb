"""A problem reads in one language: title, detail and field errors follow Accept-Language, Turkish by default."""

import uuid

import pytest
from rest_framework.test import APIClient

from apps.core import incident_lock
from tests import factories
from tests.conftest import verified_client

pytestmark = pytest.mark.django_db

TURKISH, ENGLISH = "tr", "en"


@pytest.fixture
def operator_api(role_users):
    return verified_client(APIClient(), role_users["operator"])


def ask(client, method, url, language, **kwargs):
    headers = {"HTTP_ACCEPT_LANGUAGE": language} if language else {}
    response = getattr(client, method)(url, format="json", **headers, **kwargs)
    assert response["Content-Type"] == "application/problem+json"
    return response.json()


@pytest.mark.parametrize(
    ("language", "title", "detail"),
    [
        (None, "Kimlik doğrulaması gerekli", "Giriş bilgileri verilmedi."),
        (TURKISH, "Kimlik doğrulaması gerekli", "Giriş bilgileri verilmedi."),
        (ENGLISH, "Authentication is required", "Authentication credentials were not provided."),
    ],
)
def test_an_unauthenticated_request_reads_in_one_language(language, title, detail):
    body = ask(APIClient(), "get", "/api/v1/jobs/", language)
    assert (body["title"], body["detail"]) == (title, detail)


@pytest.mark.parametrize(
    ("language", "title", "detail", "field_error"),
    [
        (TURKISH, "İstek doğrulanamadı", "Hatalı alanlar için errors alanına bakın.", "Bu alan zorunlu."),
        (ENGLISH, "The request did not validate", "See errors for the fields that failed.", "This field is required."),
    ],
)
def test_a_validation_error_reads_in_one_language(operator_api, tenant_a, language, title, detail, field_error):
    job = factories.JobFactory(tenant=tenant_a)
    body = ask(operator_api, "post", f"/api/v1/jobs/{job.public_id}/status", language, data={"progress": 5})
    assert (body["title"], body["detail"], body["errors"]["status"]) == (title, detail, [field_error])


@pytest.mark.parametrize(
    ("language", "title", "detail"),
    [(TURKISH, "Bulunamadı", "Böyle bir iş yok."), (ENGLISH, "Not found", "No such job.")],
)
def test_a_missing_job_reads_in_one_language(operator_api, language, title, detail):
    body = ask(operator_api, "post", f"/api/v1/jobs/{uuid.uuid4()}/status", language, data={"status": "running"})
    assert (body["title"], body["detail"]) == (title, detail)


@pytest.mark.parametrize(
    ("language", "title"),
    [(TURKISH, "Geçersiz durum geçişi"), (ENGLISH, "Illegal status transition")],
)
def test_an_illegal_transition_reads_in_one_language(operator_api, tenant_a, language, title):
    job = factories.JobFactory(tenant=tenant_a, status="succeeded")
    body = ask(operator_api, "post", f"/api/v1/jobs/{job.public_id}/status", language, data={"status": "running"})
    assert body["title"] == title
    assert ("durumundan" in body["detail"]) is (language == TURKISH), body["detail"]


@pytest.mark.parametrize(
    ("language", "title", "detail"),
    [
        (TURKISH, "Geçersiz Idempotency-Key", "Idempotency-Key 1 ile 255 arası görünür ASCII karakterden oluşur."),
        (ENGLISH, "Invalid Idempotency-Key", "An Idempotency-Key is 1 to 255 visible ASCII characters."),
    ],
)
def test_a_bad_idempotency_key_reads_in_one_language(operator_api, tenant_a, language, title, detail):
    job = factories.JobFactory(tenant=tenant_a)
    body = ask(
        operator_api, "post", f"/api/v1/jobs/{job.public_id}/status", language,
        data={"status": "running"}, HTTP_IDEMPOTENCY_KEY="x" * 300,
    )  # fmt: skip
    assert (body["title"], body["detail"]) == (title, detail)


@pytest.mark.parametrize(
    ("language", "title", "detail"),
    [
        (TURKISH, "Kilitli: acil durum kilidi açık", "Bir operatör acil durum kilidini kaldırana kadar yazma"),
        (ENGLISH, "Locked: the incident lock is on", "Writes are refused until an operator lifts"),
    ],
)
def test_the_incident_lock_refusal_reads_in_one_language(operator_api, tenant_a, language, title, detail):
    job = factories.JobFactory(tenant=tenant_a)
    incident_lock.set_lock(True, reason="tatbikat", source="command")
    body = ask(operator_api, "post", f"/api/v1/jobs/{job.public_id}/status", language, data={"status": "running"})
    assert body["title"] == title and body["detail"].startswith(detail)
