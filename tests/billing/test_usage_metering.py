import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse

from apps.billing import metering, pricing, selectors, services, subscribers
from apps.billing.models import UsageEvent, UsageMetric
from apps.events import registry
from apps.events.models import OutboxEvent
from apps.jobs import services as job_services
from apps.jobs.models import JobStatus, StatusSource
from tests import factories
from tests.conftest import make_user, verified_client


def _events_of(job):
    return list(
        OutboxEvent.objects.filter(aggregate_type="jobs.job", aggregate_id=str(job.pk)).order_by("aggregate_seq")
    )


def test_billing_subscribes_to_job_status_changes():
    assert "billing.usage" in [k for k, _h in registry.subscribers("job.status.changed")]


@pytest.mark.django_db
def test_a_finished_job_meters_one_job_its_machine_hours_and_the_erp_messages(tenant_a):
    job = factories.JobFactory(tenant=tenant_a, model_type__code="M-100")
    job_services.change_status(job, JobStatus.RUNNING)
    job.refresh_from_db()
    job.started_at = job.started_at - dt.timedelta(minutes=90)
    job.save(update_fields=["started_at"])
    job_services.change_status(job, JobStatus.SUCCEEDED)
    for event in _events_of(job):
        subscribers._on_job_status_changed(event)
    rows = {(e.metric, e.dimension): e.quantity for e in UsageEvent.objects.filter(tenant=tenant_a)}
    assert rows[(UsageMetric.JOBS_PROCESSED, "M-100")] == 1
    assert rows[(UsageMetric.MACHINE_HOURS, "M-100")] == pytest.approx(Decimal("1.5"), abs=Decimal("0.01"))
    assert UsageEvent.objects.filter(metric=UsageMetric.ERP_MESSAGES, dimension="outbound").count() == 2


@pytest.mark.django_db
def test_an_event_handed_on_twice_counts_once(tenant_a):
    job = factories.JobFactory(tenant=tenant_a)
    job_services.change_status(job, JobStatus.RUNNING)
    job_services.change_status(job, JobStatus.FAILED, source=StatusSource.ERP)
    for event in _events_of(job) * 2:  # at-least-once delivery: every event twice
        subscribers._on_job_status_changed(event)
    assert UsageEvent.objects.filter(metric=UsageMetric.JOBS_PROCESSED).count() == 1
    # The ERP's own change is no outbound message; the job it finished is still a processed job.
    assert UsageEvent.objects.filter(metric=UsageMetric.ERP_MESSAGES).count() == 1


def test_the_erps_own_progress_updates_queue_no_billing_task():
    from apps.billing.subscribers import _wanted

    progress = {"source": "erp", "status": "running", "from_status": "running"}
    assert "billing.usage" not in [k for k, _h in registry.subscribers("job.status.changed", progress)]
    assert _wanted({**progress, "status": "succeeded"}) and _wanted({**progress, "source": "api"})


@pytest.mark.django_db
def test_record_usage_with_a_known_key_adds_nothing(tenant_a):
    first, created = services.record_usage(tenant_a.pk, "exports", 1, key="export:x")
    again, created_again = services.record_usage(tenant_a.pk, "exports", 5, key="export:x")
    assert created and not created_again and again.pk == first.pk and again.quantity == 1


@pytest.mark.django_db
def test_usage_is_aggregated_by_day_week_and_month_in_istanbul_time(tenant_a):
    tz = selectors.local_zone()
    for i, when in enumerate(
        [
            dt.datetime(2026, 11, 2, 23, 30, tzinfo=dt.UTC),  # 3 Nov in Istanbul
            dt.datetime(2026, 11, 3, 10, 0, tzinfo=tz),
            dt.datetime(2026, 11, 20, 10, 0, tzinfo=tz),
        ]
    ):
        services.record_usage(tenant_a.pk, "exports", 1, key=f"e{i}", occurred_at=when)
    period = pricing.parse_period("2026-11")
    assert selectors.usage_totals(tenant_a.pk, period, grain="day") == [
        {"bucket": "2026-11-03", "exports": "2.0000"},
        {"bucket": "2026-11-20", "exports": "1.0000"},
    ]
    assert selectors.usage_totals(tenant_a.pk, period, grain="week") == [
        {"bucket": "2026-W45", "exports": "2.0000"},
        {"bucket": "2026-W47", "exports": "1.0000"},
    ]
    assert selectors.usage_totals(tenant_a.pk, period, grain="month") == [{"bucket": "2026-11", "exports": "3.0000"}]


@pytest.mark.django_db
def test_api_calls_are_counted_per_tenant_and_flushed_in_batches(client, tenant_a, settings):
    settings.BILLING_API_FLUSH_CALLS = 3
    settings.BILLING_API_FLUSH_SECONDS = 3600
    metering.flush()
    user = make_user("analyst_x", roles=["analyst"], tenants=[tenant_a])
    verified_client(client, user)
    for _ in range(4):
        assert client.get(reverse("v1:job-list")).status_code == 200
    assert sum(e.quantity for e in UsageEvent.objects.filter(metric="api_calls", tenant=tenant_a)) == 3
    metering.flush()
    assert sum(e.quantity for e in UsageEvent.objects.filter(metric="api_calls", tenant=tenant_a)) == 4
    assert metering.flush() == 0


def _relay_export_events():
    """Hand the outbox's export events to their subscribers, as the relay does after commit."""
    from apps.events import services as event_services

    for event in OutboxEvent.objects.filter(event_type="report.export.requested"):
        event_services.dispatch_one(event.pk)


@pytest.mark.django_db
def test_an_export_started_in_the_panel_or_the_api_is_metered_once_through_the_outbox(client, tenant_a, settings):
    from rest_framework.test import APIClient

    factories.JobFactory(tenant=tenant_a)
    analyst = make_user("analyst_exports", roles=["analyst"], tenants=[tenant_a])
    panel = verified_client(client, analyst)
    assert panel.post("/panel/exports/", {"format": "csv"}).status_code == 302
    api = verified_client(APIClient(), analyst)
    body = {"format": "json", "filters": {}}
    first = api.post("/reports/export", body, format="json", HTTP_IDEMPOTENCY_KEY="exp-1")
    again = api.post("/reports/export", body, format="json", HTTP_IDEMPOTENCY_KEY="exp-1")
    assert first.status_code == again.status_code == 202 and again["Idempotent-Replayed"] == "true"
    _relay_export_events()
    _relay_export_events()  # handed on twice (at-least-once): still counted once
    exports = UsageEvent.objects.filter(metric=UsageMetric.EXPORTS, tenant=tenant_a)
    assert exports.count() == 2, "one from the panel, one from the API (its replay is not a new export)"
    assert {e.idempotency_key for e in exports} == {
        f"export:{pk}" for pk in OutboxEvent.objects.filter(event_type="report.export.requested")
        .values_list("payload__export_id", flat=True)
    }  # fmt: skip


@pytest.mark.django_db
def test_an_export_across_several_tenants_is_nobodys_to_bill(client, tenant_a, tenant_b):
    factories.JobFactory(tenant=tenant_a)
    admin = make_user("root_exports", superuser=True)
    panel = verified_client(client, admin)
    assert panel.post("/panel/exports/", {"format": "csv"}).status_code == 302
    assert panel.post("/panel/exports/", {"format": "csv", "tenant": tenant_b.slug}).status_code == 302
    _relay_export_events()
    billed = UsageEvent.objects.filter(metric=UsageMetric.EXPORTS).values_list("tenant", flat=True)
    assert list(billed) == [tenant_b.pk], "only the export of one tenant is billed"


@pytest.mark.django_db
def test_inbound_erp_messages_are_metered_and_their_replays_are_not(client, tenant_a, settings):
    from apps.erp import inbound_services
    from tests.erp.inbound_helpers import CURRENT, TOKEN, send

    settings.BILLING_API_FLUSH_CALLS = 1000
    from apps.erp import keyring
    from apps.erp.models import IntegrationProfile, KeyState

    profile = IntegrationProfile.objects.create(tenant=tenant_a, name="erp-metered", ip_allowlist="127.0.0.1/32")
    inbound_services.set_inbound_token(profile, TOKEN)
    keyring.add_key(profile, CURRENT, state=KeyState.CURRENT)
    job = factories.JobFactory(tenant=tenant_a, external_id="ERP-METER-1")
    for progress, key in ((10, "m-10"), (30, "m-30"), (30, "m-30")):  # the last is a replay
        payload = {"job_id": job.external_id, "status": "running", "progress": progress}
        assert send(client, payload, secret=CURRENT, idempotency_key=key).status_code == 200
    refused = {"job_id": "NO-SUCH-JOB", "status": "running", "progress": 5}
    assert send(client, refused, secret=CURRENT, idempotency_key="m-x").status_code == 404
    metering.flush()
    inbound = UsageEvent.objects.filter(metric=UsageMetric.ERP_MESSAGES, dimension="inbound", tenant=tenant_a)
    assert sum(e.quantity for e in inbound) == 2, "two messages applied; the replay and the refused one are not billed"
    assert not UsageEvent.objects.filter(metric=UsageMetric.API_CALLS).exists(), "an ERP message is not an API call"
