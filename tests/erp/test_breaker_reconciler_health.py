"""The circuit breaker, the reconciler, the re-drive after an outage, /internal/erp/health and /metrics."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from apps.erp import services
from apps.erp.models import DeadLetterCause, ErpOutboundDeadLetter, ErpSync, ErrorClass, SyncStatus
from apps.jobs import services as jobs
from apps.jobs.models import JobStatus
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def tight_breaker(erp_settings):
    erp_settings.ERP_BREAKER_FAILURES = 2
    erp_settings.ERP_BREAKER_COOLDOWN_SECONDS = 30
    erp_settings.ERP_RETRY_SCHEDULE = [1, 1, 1, 1, 1]
    return erp_settings


def run_job(tenant, capture):
    job = factories.JobFactory(tenant=tenant)
    with capture(execute=True):
        jobs.change_status(job, JobStatus.RUNNING)
    return ErpSync.objects.get(job=job)


def test_the_breaker_opens_holds_rows_without_spending_retries_and_recovers(
    erp_profile, mock_erp, tenant_a, tight_breaker, django_capture_on_commit_callbacks
):
    mock_erp.plan(status=503, count=2)
    with time_machine.travel(timezone.now(), tick=False) as clock:
        first = run_job(tenant_a, django_capture_on_commit_callbacks)
        second = run_job(tenant_a, django_capture_on_commit_callbacks)
        circuit = services.breaker(erp_profile)
        assert circuit.state().state == "open"

        third = run_job(tenant_a, django_capture_on_commit_callbacks)
        assert (third.status, third.attempt_count, third.retry_count) == ("queued", 0, 0)
        assert third.next_attempt_at >= timezone.now() + timedelta(seconds=29)
        clock.shift(5)  # the first two rows' retries are due, but the breaker holds them
        assert services.deliver_due() == {"breaker-open": 2}
        first.refresh_from_db()
        assert (first.attempt_count, first.retry_count) == (1, 1)
        assert len(mock_erp.received()) == 2

        clock.shift(30)  # cool-down over: one probe goes out, succeeds, the rest follow
        with django_capture_on_commit_callbacks(execute=True):
            services.deliver_due()
        assert circuit.state().state == "closed"
    assert set(ErpSync.objects.values_list("status", flat=True)) == {SyncStatus.ACKED}
    assert len(mock_erp.received()) == 5
    second.refresh_from_db()
    assert second.retry_count == 1


def test_a_failed_probe_keeps_the_breaker_open_for_another_cool_down(
    erp_profile, mock_erp, tenant_a, tight_breaker, django_capture_on_commit_callbacks
):
    mock_erp.plan(status=503, count=3)
    with time_machine.travel(timezone.now(), tick=False) as clock:
        run_job(tenant_a, django_capture_on_commit_callbacks)
        run_job(tenant_a, django_capture_on_commit_callbacks)
        circuit = services.breaker(erp_profile)
        clock.shift(31)
        assert circuit.allow() is True  # the probe
        assert circuit.allow() is False  # only one per cool-down
        circuit.record_failure()
        assert circuit.state().state == "open"
        assert 29 <= circuit.seconds_until_retry() <= 30


def test_the_dlq_entries_of_an_outage_are_redriven_when_the_breaker_closes(
    erp_profile, mock_erp, tenant_a, tight_breaker, django_capture_on_commit_callbacks
):
    tight_breaker.ERP_RETRY_SCHEDULE = []
    tight_breaker.ERP_BREAKER_FAILURES = 10
    mock_erp.plan(status=503, count=3)
    rejected = factories.JobFactory(tenant=tenant_a)
    for _ in range(3):
        run_job(tenant_a, django_capture_on_commit_callbacks)
    mock_erp.plan(status=400)
    with django_capture_on_commit_callbacks(execute=True):
        jobs.change_status(rejected, JobStatus.RUNNING)
    assert ErpOutboundDeadLetter.objects.filter(closed_at__isnull=True).count() == 4

    circuit = services.breaker(erp_profile)
    for _ in range(10):
        circuit.record_failure()
    assert circuit.state().state == "open"
    circuit.record_success()  # the outage ends: breaker_closed is sent
    with django_capture_on_commit_callbacks(execute=True):
        assert services.redrive_after_outage(limit=2) == 2  # rate-limited
    with django_capture_on_commit_callbacks(execute=True):
        assert services.redrive_after_outage(limit=2) == 1
    assert services.redrive_after_outage() == 0
    still_dead = ErpOutboundDeadLetter.objects.get(closed_at__isnull=True)
    assert still_dead.error_class == ErrorClass.REJECTED  # a 400 is the message's fault, not the outage's
    assert ErpSync.objects.filter(status=SyncStatus.ACKED).count() == 3


def test_the_reconciler_requeues_unacknowledged_rows_then_dead_letters_them(
    erp_profile, mock_erp, job, erp_settings, django_capture_on_commit_callbacks
):
    erp_settings.ERP_RECONCILE_MAX = 2
    erp_settings.ERP_RETRY_SCHEDULE = [3600] * 5
    mock_erp.plan(status=503, count=10)
    with django_capture_on_commit_callbacks(execute=True):
        jobs.change_status(job, JobStatus.RUNNING)
    sync = ErpSync.objects.get()
    assert services.reconcile_outbound() == {"requeued": 0, "failed": 0}  # young rows are left alone
    later = timezone.now() + timedelta(minutes=11)
    for round_ in (1, 2):
        with django_capture_on_commit_callbacks(execute=True):
            assert services.reconcile_outbound(now=later) == {"requeued": 1, "failed": 0}
        sync.refresh_from_db()
        assert sync.reconcile_count == round_ and sync.attempt_count == round_ + 1
    assert services.reconcile_outbound(now=later) == {"requeued": 0, "failed": 1}
    sync.refresh_from_db()
    assert sync.status == SyncStatus.FAILED
    assert ErpOutboundDeadLetter.objects.get().cause == DeadLetterCause.UNACKNOWLEDGED


INTERNAL_TOKEN = "internal-token-for-tests-0123456789"
BEARER = {"HTTP_AUTHORIZATION": f"Bearer {INTERNAL_TOKEN}"}


@pytest.fixture
def internal_token(settings):
    settings.INTERNAL_TOKEN = INTERNAL_TOKEN
    settings.INTERNAL_ALLOWED_IPS = []
    return settings


def test_health_reports_the_erp_and_the_queues(
    client, erp_profile, mock_erp, job, internal_token, django_capture_on_commit_callbacks
):
    mock_erp.plan(status=400)
    with django_capture_on_commit_callbacks(execute=True):
        jobs.change_status(job, JobStatus.RUNNING)
        jobs.change_status(job, JobStatus.PAUSED)
    response = client.get("/internal/erp/health", **BEARER)
    body = response.json()
    assert response.status_code == 200, body
    assert body["ok"] is True and body["breaker"] == "closed"
    assert body["dlq_depth"] == 1 and body["queue_depth"] == 0
    assert body["failure_rate"] == 0.5
    assert body["last_acked_at"] == ErpSync.objects.get(status="acked").acked_at.isoformat()
    assert body["outbox_lag_seconds"] == 0
    assert body["profiles"][0]["reachable"] is True

    mock_erp.set_health(False)
    response = client.get("/internal/erp/health", **BEARER)
    assert response.status_code == 503
    assert response.json()["ok"] is False and response.json()["profiles"][0]["detail"] == "HTTP 503"


def test_health_is_not_ok_without_a_reachable_erp(client, db, erp_settings, internal_token):
    from apps.erp.models import IntegrationProfile

    IntegrationProfile.objects.create(name="nowhere", base_url="http://127.0.0.1:9")
    body = client.get("/internal/erp/health", **BEARER).json()
    assert body["ok"] is False and body["profiles"][0]["reachable"] is False
    assert body["profiles"][0]["detail"] == "connection failed"  # not the socket error (issue 11)


def test_metrics_expose_delivery_counters_and_queue_gauges(
    client, erp_profile, mock_erp, job, internal_token, django_capture_on_commit_callbacks
):
    def sample(text, name):
        for line in text.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    before = client.get("/metrics", **BEARER).content.decode()
    mock_erp.plan(status=400)
    with django_capture_on_commit_callbacks(execute=True):
        jobs.change_status(job, JobStatus.RUNNING)
        jobs.change_status(job, JobStatus.PAUSED)
    after = client.get("/metrics", **BEARER).content.decode()
    assert (
        sample(after, "tezgah_erp_delivery_successes_total")
        == sample(before, "tezgah_erp_delivery_successes_total") + 1
    )
    name = 'tezgah_erp_delivery_failures_total{error_class="rejected"}'
    assert sample(after, name) == sample(before, name) + 1
    assert sample(after, "tezgah_erp_dlq_size") == 1
    assert sample(after, "tezgah_outbox_lag_seconds") == 0
    assert "tezgah_erp_publish_latency_seconds_bucket" in after
    assert 'tezgah_erp_breaker_open{profile="default"} 0.0' in after


def test_without_credentials_health_gives_aggregates_only(client, tenant_a, mock_erp, erp_settings, internal_token):
    from apps.erp.models import IntegrationProfile

    IntegrationProfile.objects.create(name="Anadolu MES", tenant=tenant_a, base_url=mock_erp.url)
    for headers in ({}, {"HTTP_AUTHORIZATION": "Bearer wrong-token"}, {"HTTP_AUTHORIZATION": INTERNAL_TOKEN}):
        response = client.get("/internal/erp/health", **headers)
        body = response.json()
        assert response.status_code == 200 and "profiles" not in body
        assert (body["profiles_total"], body["profiles_unhealthy"]) == (1, 0) and body["ok"] is True
        assert "Anadolu MES" not in response.content.decode() and tenant_a.slug not in response.content.decode()
    detailed = client.get("/internal/erp/health", **BEARER).json()
    assert detailed["profiles"][0]["name"] == "Anadolu MES" and detailed["profiles"][0]["tenant"] == tenant_a.slug


def test_an_address_in_internal_allowed_ips_gets_the_details(client, erp_profile, internal_token):
    internal_token.INTERNAL_ALLOWED_IPS = ["10.1.0.0/16"]
    assert "profiles" not in client.get("/internal/erp/health").json()  # the test client is 127.0.0.1
    assert "profiles" in client.get("/internal/erp/health", REMOTE_ADDR="10.1.2.3").json()
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200


def test_metrics_need_the_internal_token(client, db, internal_token):
    for headers in (
        {},
        {"HTTP_AUTHORIZATION": "Bearer wrong-token"},
        {"HTTP_AUTHORIZATION": f"Token {INTERNAL_TOKEN}"},
    ):
        response = client.get("/metrics", **headers)
        assert response.status_code == 401 and response["Content-Type"] == "application/problem+json"
        assert response["WWW-Authenticate"].startswith("Bearer")
        assert "tezgah_" not in response.content.decode()
    assert client.get("/metrics", **BEARER).status_code == 200
    internal_token.INTERNAL_TOKEN = ""  # unset: closed to every token
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 401


def test_the_admin_shows_the_breaker_state(client, superuser, erp_profile):
    from django.urls import reverse

    from tests.conftest import verified_client

    url = reverse("admin:erp_integrationprofile_changelist")
    verified_client(client, superuser)
    assert "closed" in client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    for _ in range(5):
        services.breaker(erp_profile).record_failure()
    page = client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "open after 5 failures; next probe in" in page
