"""Request count and latency per view and tenant on /metrics, and the other counters issue 15 lists."""

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from apps.audit import services as audit
from apps.observability import tenant_labels
from apps.reporting import metrics as reporting_metrics
from apps.reporting.models import ReportExport
from tests.conftest import make_user, verified_client

from .conftest import scrape, value

pytestmark = pytest.mark.django_db


def test_a_request_is_counted_and_timed_under_its_view_name(client, internal_token):
    before = scrape(client)
    client.get("/health/live")
    client.get("/health/live")
    after = scrape(client)
    labels = {"view": "health-live", "method": "GET", "status": "2xx", "tenant": "none"}
    assert (
        value(after, "tezgah_http_requests_total", **labels)
        == value(before, "tezgah_http_requests_total", **labels) + 2
    )
    count = value(after, "tezgah_http_request_duration_seconds_count", view="health-live", tenant="none")
    assert count == value(before, "tezgah_http_request_duration_seconds_count", view="health-live", tenant="none") + 2
    assert ("tezgah_http_request_duration_seconds_bucket", frozenset(
        {"view": "health-live", "tenant": "none", "le": "0.005"}.items()
    )) in after  # fmt: skip


def test_errors_and_unknown_paths_are_counted_by_status_class_under_bounded_names(client, internal_token):
    before = scrape(client)
    client.get("/no/such/page/12345")
    client.get("/no/such/page/67890")
    after = scrape(client)
    labels = {"view": "unresolved", "method": "GET", "status": "4xx", "tenant": "none"}
    assert (
        value(after, "tezgah_http_requests_total", **labels)
        == value(before, "tezgah_http_requests_total", **labels) + 2
    )
    assert not any("12345" in str(key) for key in after)


def test_a_user_of_one_tenant_is_counted_under_its_slug_and_a_superuser_under_multi(
    client, internal_token, role_users, superuser
):
    verified_client(client, role_users["admin"])
    client.get(reverse("admin:index"))
    other = verified_client(Client(), superuser)
    other.get(reverse("admin:index"))
    samples = scrape(Client())
    assert value(
        samples, "tezgah_http_requests_total", view="admin:index", method="GET", status="2xx", tenant="anadolu"
    )
    assert value(samples, "tezgah_http_requests_total", view="admin:index", method="GET", status="2xx", tenant="multi")


def test_tenant_labels_beyond_the_limit_are_counted_as_other(settings, tenant_a, tenant_b, rf):
    settings.OBSERVABILITY_TENANT_LABEL_LIMIT = 1
    request = rf.get("/")
    request.metrics_tenant = tenant_a
    assert tenant_labels.tenant_of(request) == ("anadolu", tenant_a.pk)
    request.metrics_tenant = tenant_b
    # Prometheus gets "other"; the stored statistics keep the tenant's id.
    assert tenant_labels.tenant_of(request) == ("other", tenant_b.pk)


def test_a_user_of_two_tenants_is_multi_and_a_user_of_none_is_none(rf, tenant_a, tenant_b):
    request = rf.get("/")
    request.user = make_user("iki", roles=["analyst"], tenants=[tenant_a, tenant_b])
    assert tenant_labels.tenant_of(request) == ("multi", None)
    request.user = make_user("hic", roles=["analyst"])
    assert tenant_labels.tenant_of(request) == ("none", None)


def test_the_middleware_can_be_switched_off(settings, internal_token):
    settings.OBSERVABILITY_REQUEST_METRICS = False
    client = Client()
    before = scrape(client)
    client.get("/health/live")
    after = scrape(client)
    labels = {"view": "health-live", "method": "GET", "status": "2xx", "tenant": "none"}
    assert value(after, "tezgah_http_requests_total", **labels) == value(before, "tezgah_http_requests_total", **labels)


def test_metrics_stay_behind_the_internal_access_rule(client, internal_token):
    assert client.get("/metrics").status_code == 401


def test_audit_backlog_and_checkpoint_age_are_read_at_scrape(client, internal_token):
    audit.record(("system", "test"), "test.observed", None, {})
    samples = scrape(client)
    assert value(samples, "tezgah_audit_unsealed_entries") >= 1
    assert ("tezgah_audit_checkpoint_age_seconds", frozenset()) in samples


def test_a_failed_sign_in_is_counted_by_step(client, internal_token):
    before = scrape(client)
    client.post(reverse("admin:login"), {"username": "nobody", "password": "wrong"})
    after = scrape(client)
    name = "tezgah_signin_failures_total"
    assert value(after, name, step="password") == value(before, name, step="password") + 1


def test_an_export_run_records_its_queue_time_and_duration(client, internal_token, superuser):
    started = timezone.now().timestamp()  # the task's start, before the export finished
    export = ReportExport.objects.create(requested_by=superuser, format="csv", filters={})
    ReportExport.objects.filter(pk=export.pk).update(status="done", finished_at=timezone.now())
    before = scrape(client)
    reporting_metrics.observe_export(export.pk, started)
    after = scrape(client)
    queue = "tezgah_report_export_queue_seconds_count"
    duration = "tezgah_report_export_duration_seconds_count"
    assert value(after, queue, format="csv") == value(before, queue, format="csv") + 1
    assert (
        value(after, duration, format="csv", outcome="done")
        == value(before, duration, format="csv", outcome="done") + 1
    )


def test_a_redelivered_finished_export_is_not_counted_again(client, internal_token, superuser):
    export = ReportExport.objects.create(requested_by=superuser, format="json", filters={})
    ReportExport.objects.filter(pk=export.pk).update(status="done", finished_at=timezone.now())
    before = scrape(client)
    reporting_metrics.observe_export(export.pk, timezone.now().timestamp() + 60)
    after = scrape(client)
    name = "tezgah_report_export_queue_seconds_count"
    assert value(after, name, format="json") == value(before, name, format="json")
