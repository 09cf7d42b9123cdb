"""The backlog in the admin (age, last error, re-send), the readiness selector and the Prometheus gauges."""

import re

import pytest
from django.urls import reverse

from apps.audit import services as audit
from apps.siem import selectors, services
from apps.siem.models import SiemDestination, SiemRecord
from tests.conftest import verified_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def waiting(settings):
    """Three records waiting for a SIEM that refuses connections (a port in this app's range, nobody on it)."""
    from .conftest import free_port

    settings.SIEM_ENDPOINT = f"tcp://127.0.0.1:{free_port()}"
    settings.SIEM_ALLOWED_HOSTS = ["127.0.0.1"]
    for i in range(3):
        audit.record(None, "security.admin_ip_refused", None, {"path": "/admin/", "i": i}, object_type="security.admin")
    audit.seal_pending()
    assert services.ship() == 0
    return SiemDestination.objects.get()


def test_waiting_records_show_their_age_and_the_last_error(client, superuser, waiting):
    verified_client(client, superuser)
    page = client.get(reverse("admin:siem_siemrecord_changelist") + "?delivery=waiting").content.decode()
    assert page.count("security.admin_ip_refused") >= 3
    assert re.search(r'class="field-age">\d+ \w+ \d+ \w+</td><td class="field-last_error">connection refused<', page)
    dest_page = client.get(reverse("admin:siem_siemdestination_changelist")).content.decode()
    assert "connection refused" in dest_page and waiting.endpoint in dest_page


def test_the_auditor_sees_the_feed_and_cannot_re_send(client, role_users, waiting):
    verified_client(client, role_users["auditor"])
    url = reverse("admin:siem_siemrecord_changelist")
    page = client.get(url)
    assert page.status_code == 200
    assert "resend_selected" not in page.content.decode()


def test_a_tenant_admin_does_not_see_the_feed(client, role_users, waiting):
    verified_client(client, role_users["admin"])
    assert client.get(reverse("admin:siem_siemrecord_changelist")).status_code == 403


def test_the_re_send_action_reports_a_siem_that_is_down(client, superuser, waiting):
    verified_client(client, superuser)
    ids = list(SiemRecord.objects.values_list("pk", flat=True))
    response = client.post(
        reverse("admin:siem_siemrecord_changelist"),
        {"action": "resend_selected", "_selected_action": ids},
        follow=True,
    )
    page = response.content.decode()
    assert "connection refused" in page and "messagelist" in page
    assert SiemDestination.objects.get().last_sent_id == 0


def test_backlog_selector_and_gauges(settings, waiting):
    from prometheus_client import CollectorRegistry, generate_latest

    from apps.siem.metrics import BacklogCollector

    assert selectors.backlog_count() == 3
    assert selectors.backlog_age_seconds() >= 0
    audit.record(None, "jobs.job.updated", None, {})
    audit.seal_pending()
    assert selectors.backlog_count() == 4  # an entry sealed but not collected yet waits too
    registry = CollectorRegistry()
    registry.register(BacklogCollector())
    text = generate_latest(registry).decode()
    assert f'tezgah_siem_backlog_records{{destination="{waiting.endpoint}"}} 4.0' in text
    assert "tezgah_siem_ship_lag_seconds{" in text
    settings.SIEM_ENDPOINT = ""
    assert selectors.backlog_age_seconds() == 0.0
    assert "tezgah_siem_backlog_records{" not in generate_latest(registry).decode()
