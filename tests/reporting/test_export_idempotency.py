"""POST /reports/export with an Idempotency-Key: the answer (export id, signed link) belongs to its requester."""

import pytest
from rest_framework.test import APIClient

from apps.core.models import IdempotencyRecord
from apps.reporting.models import ReportExport
from tests.conftest import make_user, verified_client

pytestmark = pytest.mark.django_db

GATEWAY_BASIC = "Basic Z2F0ZXdheTpzaGFyZWQ="  # added by a gateway in front of the portal to every request


def export(client, key, **headers):
    return client.post(
        "/reports/export",
        {"format": "json", "filters": {}},
        format="json",
        HTTP_IDEMPOTENCY_KEY=key,
        **headers,
    )


def test_two_analysts_with_the_same_gateway_header_and_key_get_their_own_exports(analyst_api, tenant_a, jobs):
    # Issue 11: the second analyst got the first one's export id and signed link back as a "replay".
    other = verified_client(APIClient(), make_user("analyst_two", roles=["analyst"], tenants=[tenant_a]))
    first = export(analyst_api, "export-key-1", HTTP_AUTHORIZATION=GATEWAY_BASIC)
    second = export(other, "export-key-1", HTTP_AUTHORIZATION=GATEWAY_BASIC)
    assert first.status_code == second.status_code == 202, (first.content, second.content)
    assert "Idempotent-Replayed" not in second
    assert second.json()["id"] != first.json()["id"]
    assert ReportExport.objects.get(pk=second.json()["id"]).requested_by.username == "analyst_two"
    assert first.json()["id"] not in str(second.content)
    # The first analyst's export stays its own: the other analyst cannot read it.
    assert other.get(f"/reports/export/{first.json()['id']}").status_code == 404
    assert IdempotencyRecord.objects.filter(key="export-key-1").count() == 2


def test_the_requester_retrying_gets_its_own_export_again(analyst_api, jobs):
    first = export(analyst_api, "export-key-2")
    again = export(analyst_api, "export-key-2")
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert ReportExport.objects.count() == 1
