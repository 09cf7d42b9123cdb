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


def test_metrics_show_backlog_and_lag_per_destination_through_the_metrics_view(client, settings, waiting):
    """Through /metrics as a scrape sees it (the multi-process registry plus the scrape-time collectors): the
    lag is the age of the oldest record the destination has not accepted, and grows with the clock."""
    import time_machine
    from django.utils import timezone
    from prometheus_client.parser import text_string_to_metric_families

    settings.INTERNAL_TOKEN = "siem-metrics-test-token"
    oldest = SiemRecord.objects.order_by("pk").first().created_at

    def scrape():
        response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer siem-metrics-test-token")
        assert response.status_code == 200
        found = {}
        for family in text_string_to_metric_families(response.content.decode()):
            for sample in family.samples:
                if sample.name.startswith("tezgah_siem_"):
                    found[(sample.name, sample.labels.get("destination"))] = sample.value
        return found

    with time_machine.travel(oldest + timezone.timedelta(seconds=420), tick=False):
        samples = scrape()
    assert samples[("tezgah_siem_backlog_records", waiting.endpoint)] == 3
    assert samples[("tezgah_siem_ship_lag_seconds", waiting.endpoint)] == pytest.approx(420, abs=1)
    assert len([k for k in samples if k[0] == "tezgah_siem_ship_lag_seconds"]) == 1  # one series per destination
    SiemDestination.objects.filter(pk=waiting.pk).update(last_sent_id=SiemRecord.objects.order_by("-pk")[0].pk)
    samples = scrape()
    assert samples[("tezgah_siem_backlog_records", waiting.endpoint)] == 0
    assert samples[("tezgah_siem_ship_lag_seconds", waiting.endpoint)] == 0
