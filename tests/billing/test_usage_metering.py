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
