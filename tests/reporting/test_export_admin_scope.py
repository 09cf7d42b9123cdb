"""The export admin shows a user their own exports only (superusers all), as the API does; a download is
audited with whoever followed the link as actor (issue 11)."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from apps.audit.models import AuditLog
from apps.reporting.models import ReportExport
from tests.conftest import make_user, verified_client

from .test_exports import download, finished, start

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _run_on_commit(django_capture_on_commit_callbacks):
    from . import test_exports

    test_exports._commit["capture"] = django_capture_on_commit_callbacks
    yield
    test_exports._commit.clear()


@pytest.fixture
def colleague(tenant_a):
    """Another analyst of the same tenant, with admin access (staff)."""
    return make_user("analist_iki", roles=["analyst"], tenants=[tenant_a])


def change_url(export_id) -> str:
    return reverse("admin:reporting_reportexport_change", args=[export_id])


def test_another_analysts_export_does_not_exist_in_the_admin(client, analyst_api, colleague, jobs):
    export_id = start(analyst_api, "csv")["id"]
    verified_client(client, colleague)

    response = client.get(change_url(export_id))

    assert response.status_code == 302 and response["Location"] == reverse("admin:index")
    listed = client.get(reverse("admin:reporting_reportexport_changelist")).context["cl"].result_list
    assert list(listed) == []


def test_a_tenant_admin_does_not_see_its_analysts_exports_either(client, analyst_api, role_users, jobs):
    export_id = start(analyst_api, "csv")["id"]
    verified_client(client, role_users["admin"])

    assert client.get(change_url(export_id)).status_code == 302


def test_an_analyst_sees_their_own_export_and_a_superuser_sees_all(client, analyst, analyst_api, superuser, jobs):
    export_id = start(analyst_api, "csv")["id"]
    verified_client(client, analyst)
    assert client.get(change_url(export_id)).status_code == 200

    verified_client(client, superuser)
    assert client.get(change_url(export_id)).status_code == 200


def entry_of_download():
    return AuditLog.objects.filter(action="reporting.export_downloaded").latest("id")


def test_a_download_by_a_signed_in_user_names_them_as_actor(client, analyst, analyst_api, jobs):
    body = finished(analyst_api, start(analyst_api, "csv")["id"])
    verified_client(client, analyst)

    download(client, body["download_url"])

    entry = entry_of_download()
    assert (entry.actor_type, entry.actor_id) == ("user", str(analyst.pk))
    assert entry.payload["requested_by"] == analyst.pk


def test_a_download_with_an_api_token_names_its_holder(analyst, analyst_api, colleague, jobs):
    body = finished(analyst_api, start(analyst_api, "csv")["id"])
    token = verified_client(APIClient(), colleague).post("/api/v1/auth/token/").json()["token"]
    holder = APIClient()
    holder.credentials(HTTP_AUTHORIZATION=f"Token {token}")

    download(holder, body["download_url"])

    entry = entry_of_download()
    assert (entry.actor_type, entry.actor_id) == ("user", str(colleague.pk))
    assert entry.payload["requested_by"] == analyst.pk


def test_a_download_without_credentials_is_anonymous_not_system_and_a_bad_token_does_not_refuse_it(
    analyst, analyst_api, jobs
):
    body = finished(analyst_api, start(analyst_api, "csv")["id"])
    stranger = APIClient()
    stranger.credentials(HTTP_AUTHORIZATION="Token not-a-token")

    download(stranger, body["download_url"])

    entry = entry_of_download()
    assert (entry.actor_type, entry.actor_id) == ("anonymous", "")
    assert entry.payload["requested_by"] == analyst.pk
    assert ReportExport.objects.get(pk=body["id"]).download_count == 1
