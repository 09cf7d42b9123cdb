"""ERP base URLs pass the outbound-URL guard (issue 11): refused at save time and at send time unless
ERP_ALLOWED_HOSTS admits them; a refused profile pauses instead of dead-lettering; stored errors say only
what kind of failure it was; the keep-alive sender looks nothing up for an IP-literal base URL."""

import ipaddress
import socket

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import translation

from apps.erp import services
from apps.erp.admin import IntegrationProfileForm
from apps.erp.models import ErpSync, ErpSyncAttempt, ErrorClass, IntegrationProfile, SyncStatus
from apps.jobs import services as jobs
from apps.jobs.models import JobStatus
from tests import factories

pytestmark = pytest.mark.django_db


def change(job, status, capture, **kwargs):
    with capture(execute=True):
        return jobs.change_status(job, status, **kwargs)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8081", "http://localhost:8081", "http://[::1]:8081", "http://169.254.169.254"]
)
def test_a_profile_with_an_internal_base_url_is_refused_unless_allowlisted(erp_settings, url):
    erp_settings.ERP_ALLOWED_HOSTS = []
    with pytest.raises(ValidationError) as caught:
        IntegrationProfile(name="p", base_url=url).full_clean()
    assert list(caught.value.message_dict) == ["base_url"]
    erp_settings.ERP_ALLOWED_HOSTS = ["127.0.0.1", "localhost", "::1", "169.254.169.254"]
    IntegrationProfile(name="p", base_url=url).full_clean()


def test_the_profile_form_explains_the_refusal(erp_settings):
    erp_settings.ERP_ALLOWED_HOSTS = []
    form = IntegrationProfileForm(data={"name": "p", "base_url": "http://127.0.0.1:6379", "ip_allowlist": ""})
    assert not form.is_valid()
    with translation.override("en"):
        message = str(form.errors["base_url"][0])
    assert "loopback" in message and "ERP_ALLOWED_HOSTS" in message


def test_the_admin_refuses_to_save_a_loopback_base_url(client, superuser, erp_settings):
    from tests.conftest import verified_client

    erp_settings.ERP_ALLOWED_HOSTS = []
    form = {"name": "p", "base_url": "http://127.0.0.1:6379", "enabled": "on", "ip_allowlist": ""}
    response = verified_client(client, superuser).post(reverse("admin:erp_integrationprofile_add"), form)
    assert response.status_code == 200 and not IntegrationProfile.objects.exists()
    assert "ERP_ALLOWED_HOSTS" in response.content.decode()


def test_a_stored_loopback_base_url_is_refused_at_send_time_and_pauses_the_profile(
    erp_profile, mock_erp, job, erp_settings, django_capture_on_commit_callbacks
):
    erp_settings.ERP_ALLOWED_HOSTS = []  # the profile was saved while loopback was allowed
    change(job, JobStatus.RUNNING, django_capture_on_commit_callbacks)
    assert mock_erp.received() == []
    sync = ErpSync.objects.get()
    attempt = ErpSyncAttempt.objects.get()
    assert sync.status == SyncStatus.QUEUED and sync.error_class == ErrorClass.REFUSED
    assert attempt.outcome == "paused" and attempt.error_message == "refused by outbound policy"
    erp_profile.refresh_from_db()
    assert erp_profile.is_paused and erp_profile.pause_reason == "refused by outbound policy"
    assert services.breaker(erp_profile).state().state == "closed"  # no call was made: not an outage


def test_an_unreachable_erp_is_stored_as_connection_failed_without_its_address(
    erp_settings, job, django_capture_on_commit_callbacks
):
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    IntegrationProfile.objects.create(name="default", base_url=f"http://127.0.0.1:{port}")
    erp_settings.ERP_SHARED_SECRET = "a-shared-secret-for-this-test"
    change(job, JobStatus.RUNNING, django_capture_on_commit_callbacks)
    attempt = ErpSyncAttempt.objects.get()
    assert attempt.error_class == ErrorClass.CONNECTION and attempt.error_message == "connection failed"
    assert ErpSync.objects.get().error_message == "connection failed"


def test_the_sender_looks_nothing_up_for_an_ip_literal_base_url(
    erp_profile, mock_erp, tenant_a, monkeypatch, django_capture_on_commit_callbacks
):
    real = socket.getaddrinfo
    names = []

    def getaddrinfo(host, *args, **kwargs):
        try:
            ipaddress.ip_address(host)
        except ValueError:
            names.append(host)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    for _ in range(3):
        change(factories.JobFactory(tenant=tenant_a), JobStatus.RUNNING, django_capture_on_commit_callbacks)
    assert len(mock_erp.received()) == 3 and names == []
    assert ErpSync.objects.filter(status=SyncStatus.ACKED).count() == 3
