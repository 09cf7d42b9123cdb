"""Stored request statistics (batched upserts) and the per-tenant SLA computed from them."""

from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from apps.core.circuit_breaker import CircuitBreaker
from apps.observability import selectors, services, tasks
from apps.observability.constants import LATENCY_BUCKETS
from apps.observability.models import RequestStat
from apps.observability.stats_buffer import StatsBuffer, buffer
from tests.conftest import make_user, verified_client

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _fill(stats: StatsBuffer, *, tenant_id, at, latencies_ms, view="v1:job-list", errors=0):
    for i, ms in enumerate(latencies_ms):
        status = 500 if i < errors else 200
        stats.add(at=at.timestamp(), tenant_id=tenant_id, view=view, status=status, seconds=ms / 1000)


def test_a_batch_is_one_row_per_bucket_tenant_and_view_and_later_batches_add_to_it(tenant_a):
    stats = StatsBuffer()
    _fill(stats, tenant_id=tenant_a.pk, at=NOW, latencies_ms=[3, 40, 40, 900], errors=1)
    assert stats.flush() == 1
    _fill(stats, tenant_id=tenant_a.pk, at=NOW + timedelta(seconds=30), latencies_ms=[3], errors=0)
    stats.add(at=NOW.timestamp(), tenant_id=tenant_a.pk, view="v1:job-list", status=404, seconds=0.002)
    assert stats.flush() == 1
    row = RequestStat.objects.get()
    assert (row.tenant_id, row.tenant_key, row.view, row.bucket) == (tenant_a.pk, tenant_a.pk, "v1:job-list", NOW)
    assert (row.requests, row.errors, row.client_errors) == (6, 1, 1)
    assert (row.b0, row.b3, row.b7) == (3, 2, 1)  # <=5 ms, <=50 ms, <=1 s
    assert row.duration_ms_sum == pytest.approx(3 + 40 + 40 + 900 + 3 + 2)


def test_requests_of_no_single_tenant_are_stored_under_key_zero():
    stats = StatsBuffer()
    _fill(stats, tenant_id=None, at=NOW, latencies_ms=[10])
    _fill(stats, tenant_id=None, at=NOW, latencies_ms=[10])
    stats.flush()
    row = RequestStat.objects.get()
    assert (row.tenant_id, row.tenant_key, row.requests) == (None, 0, 2)


def test_a_failed_flush_keeps_the_figures_for_the_next(monkeypatch, tenant_a):
    stats = StatsBuffer()
    _fill(stats, tenant_id=tenant_a.pk, at=NOW, latencies_ms=[10, 20])

    def down(rows):
        raise ConnectionError("database away")

    monkeypatch.setattr(services, "store_request_stats", down)
    assert stats.flush() == 0
    monkeypatch.undo()
    _fill(stats, tenant_id=tenant_a.pk, at=NOW, latencies_ms=[30])
    assert stats.flush() == 1
    assert RequestStat.objects.get().requests == 3


def test_the_middleware_accumulates_and_flushes_when_due(settings):
    settings.OBSERVABILITY_REQUEST_STATS = True
    client = Client()  # a handler built with the setting above
    client.get("/health/live")
    client.get("/health/live")
    assert not RequestStat.objects.exists()  # accumulated in the process, not a row per request
    settings.OBSERVABILITY_STATS_FLUSH_SECONDS = 0
    client.get("/health/live")
    row = RequestStat.objects.get(view="health-live")
    assert (row.requests, row.tenant_key) == (3, 0)


def test_quantiles_interpolate_within_the_bucket_like_histogram_quantile():
    counts = [0] * (len(LATENCY_BUCKETS) + 1)
    counts[3] = 50  # (25 ms, 50 ms]
    counts[4] = 50  # (50 ms, 100 ms]
    assert selectors.quantile_seconds(0.5, counts) == pytest.approx(0.05)
    assert selectors.quantile_seconds(0.95, counts) == pytest.approx(0.095)
    assert selectors.quantile_seconds(0.25, counts) == pytest.approx(0.0375)
    counts[-1] = 1000  # above 60 s: the last finite bound, as Prometheus answers
    assert selectors.quantile_seconds(0.99, counts) == 60.0
    assert selectors.quantile_seconds(0.5, [0] * len(counts)) is None


def test_sla_over_a_day_per_tenant_and_aggregate(tenant_a, tenant_b, superuser):
    stats = StatsBuffer()
    # Tenant A: 100 requests, 90 fast (<=10 ms), 10 slow (<=1 s), 2 of them 5xx.
    _fill(stats, tenant_id=tenant_a.pk, at=NOW - timedelta(hours=2), latencies_ms=[8] * 90 + [700] * 10, errors=2)
    _fill(stats, tenant_id=tenant_b.pk, at=NOW - timedelta(hours=3), latencies_ms=[30] * 50)
    # Older than the day: only in the week.
    _fill(stats, tenant_id=tenant_a.pk, at=NOW - timedelta(days=3), latencies_ms=[8] * 100, errors=100)
    stats.flush()
    day = selectors.sla(superuser, window="day", now=NOW)
    by_slug = {t["tenant"]["slug"]: t for t in day["tenants"]}
    a = by_slug["anadolu"]
    assert (a["requests"], a["server_errors"], a["error_rate"], a["availability"]) == (100, 2, 0.02, 0.98)
    assert a["latency_ms"]["p50"] == pytest.approx(5 + 5 * (50 / 90), abs=0.01)  # in (5 ms, 10 ms]
    assert 500 < a["latency_ms"]["p95"] <= 1000 and 500 < a["latency_ms"]["p99"] <= 1000
    assert a["throughput_rps"] == pytest.approx(100 / 86400, rel=1e-3)
    assert day["aggregate"]["requests"] == 150 and day["aggregate"]["error_rate"] == pytest.approx(2 / 150, abs=1e-6)
    week = selectors.sla(superuser, window="week", now=NOW)
    assert {t["tenant"]["slug"]: t["requests"] for t in week["tenants"]} == {"anadolu": 200, "bogazici": 50}


def _stats_of_three(tenant_a, tenant_b):
    stats = StatsBuffer()
    now = timezone.now()
    _fill(stats, tenant_id=tenant_a.pk, at=now, latencies_ms=[10] * 4)
    _fill(stats, tenant_id=tenant_b.pk, at=now, latencies_ms=[10] * 5)
    _fill(stats, tenant_id=None, at=now, latencies_ms=[10] * 6)
    stats.flush()


def test_the_api_shows_a_tenant_admin_only_their_tenants_figures(client, role_users, tenant_a, tenant_b):
    _stats_of_three(tenant_a, tenant_b)
    verified_client(client, role_users["admin"])
    response = client.get("/api/enterprise/metrics", {"window": "week"})
    assert response.status_code == 200
    body = response.json()
    assert [t["tenant"]["slug"] for t in body["tenants"]] == ["anadolu"]
    assert body["aggregate"]["requests"] == 4 and body["window"] == "week"


def test_the_api_shows_a_superuser_every_tenant_and_the_tenantless_requests(client, superuser, tenant_a, tenant_b):
    _stats_of_three(tenant_a, tenant_b)
    verified_client(client, superuser)
    body = client.get("/api/enterprise/metrics").json()
    assert sorted(t["requests"] for t in body["tenants"]) == [4, 5, 6]
    assert body["aggregate"]["requests"] == 15
    one = client.get("/api/enterprise/metrics", {"tenant": "bogazici"}).json()
    assert one["aggregate"]["requests"] == 5


@pytest.mark.parametrize(
    "params", [{"window": "year"}, {"tenant": "bogazici"}, {"tenant": "no such tenant!"}, {"view": "x" * 300}]
)
def test_bad_parameters_are_problems(client, role_users, tenant_b, params):
    verified_client(client, role_users["admin"])
    response = client.get("/api/enterprise/metrics", params)
    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"


def test_the_api_needs_the_capability(client, role_users):
    verified_client(client, role_users["operator"])
    response = client.get("/api/enterprise/metrics")
    assert response.status_code == 403 and response["Content-Type"] == "application/problem+json"
    assert Client().get("/api/enterprise/metrics").status_code in (401, 403)


def test_the_prometheus_format_has_every_window_per_tenant(client, superuser, tenant_a, tenant_b):
    _stats_of_three(tenant_a, tenant_b)
    verified_client(client, superuser)
    response = client.get("/api/enterprise/metrics/prometheus")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    for window in ("day", "week", "month"):
        assert f'tezgah_sla_requests{{tenant="anadolu",window="{window}"}} 4.0' in text
    assert 'tezgah_sla_latency_seconds{quantile="0.95",tenant="all",window="day"}' in text
    assert 'tezgah_sla_availability_ratio{tenant="none",window="day"} 1.0' in text
    # A scraper that accepts only text/plain is served too; a bad parameter is still a problem.
    assert client.get("/api/enterprise/metrics/prometheus", HTTP_ACCEPT="text/plain").status_code == 200
    bad = client.get("/api/enterprise/metrics/prometheus", {"tenant": "nope"}, HTTP_ACCEPT="text/plain")
    assert bad.status_code == 422 and "validation-error" in bad.content.decode()


def test_circuit_breakers_are_listed_with_their_state(client, superuser, role_users):
    breaker = CircuitBreaker("observability-test", failure_threshold=2, cooldown=60)
    breaker.record_failure()
    breaker.record_failure()
    verified_client(client, superuser)
    response = client.get("/api/enterprise/circuit-breakers")
    assert response.status_code == 200
    listed = {b["name"]: b for b in response.json()["breakers"]}
    assert listed["observability-test"]["state"] == "open"
    assert listed["observability-test"]["consecutive_failures"] == 2
    verified_client(client, role_users["admin"])
    assert client.get("/api/enterprise/circuit-breakers").status_code == 403


def test_every_enabled_erp_profile_breaker_is_listed_even_if_never_built_here(client, superuser, tenant_a):
    from apps.erp.models import IntegrationProfile

    IntegrationProfile.objects.create(tenant=tenant_a, name="listed-profile")
    verified_client(client, superuser)
    names = [b["name"] for b in client.get("/api/enterprise/circuit-breakers").json()["breakers"]]
    assert "listed-profile" in names


def test_the_admin_shows_the_sla_above_the_rows(client, role_users, tenant_a, tenant_b):
    _stats_of_three(tenant_a, tenant_b)
    verified_client(client, role_users["admin"])
    response = client.get(reverse("admin:observability_requeststat_changelist"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Anadolu Döküm" in page and "Boğaziçi Pres" not in page


def test_the_admin_refuses_users_without_the_capability(client, role_users):
    verified_client(client, role_users["operator"])
    assert client.get(reverse("admin:observability_requeststat_changelist")).status_code == 403


def test_old_statistics_are_purged(settings, tenant_a):
    settings.OBSERVABILITY_STATS_RETENTION_DAYS = 30
    stats = StatsBuffer()
    _fill(stats, tenant_id=tenant_a.pk, at=timezone.now() - timedelta(days=40), latencies_ms=[1])
    _fill(stats, tenant_id=tenant_a.pk, at=timezone.now(), latencies_ms=[1])
    stats.flush()
    assert tasks.purge_request_stats() == 1
    assert RequestStat.objects.count() == 1


def test_an_auditor_of_no_tenant_sees_nothing(client, db):
    auditor = make_user("denetci_x", roles=["auditor"])
    buffer.add(at=timezone.now().timestamp(), tenant_id=None, view="x", status=200, seconds=0.01)
    buffer.flush()
    verified_client(client, auditor)
    body = client.get("/api/enterprise/metrics").json()
    assert body["tenants"] == [] and body["aggregate"]["requests"] == 0
