"""Open breaks per age bucket in /metrics, so an alert rule can fire on old breaks (deploy/prometheus/alerts.yml)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.recon.metrics import OpenBreaksCollector
from apps.recon.models import Break

from . import conftest as recon_fixtures
from .test_matching import _run

profile_a, jobs_a = recon_fixtures.profile_a, recon_fixtures.jobs_a  # the fixtures

pytestmark = pytest.mark.django_db


def _gauge():
    (family,) = list(OpenBreaksCollector().collect())
    return {sample.labels["bucket"]: sample.value for sample in family.samples}


def test_open_breaks_are_counted_per_age_bucket_and_closed_ones_are_not(profile_a, jobs_a):
    assert _gauge() == {"0-1": 0, "2-7": 0, "8-30": 0, ">30": 0}
    _run(profile_a, "ERP-1,M1,MT1,,running,55,2026-11-30T08:00:00Z,", "ERP-9,M1,MT1,,queued,0,,")
    breaks = list(Break.objects.filter(state="open").order_by("pk"))
    assert len(breaks) >= 3
    Break.objects.filter(pk=breaks[0].pk).update(first_seen_at=timezone.now() - timedelta(days=45))
    Break.objects.filter(pk=breaks[1].pk).update(first_seen_at=timezone.now() - timedelta(days=10))
    Break.objects.filter(pk=breaks[2].pk).update(state="resolved", first_seen_at=timezone.now() - timedelta(days=60))
    gauge = _gauge()
    assert gauge[">30"] == 1 and gauge["8-30"] == 1
    assert sum(gauge.values()) == len(breaks) - 1, "a resolved break is not open"


def test_the_gauge_reaches_metrics(client, settings, profile_a, jobs_a):
    _run(profile_a, "ERP-9,M1,MT1,,queued,0,,")
    Break.objects.update(first_seen_at=timezone.now() - timedelta(days=40))
    settings.INTERNAL_TOKEN = "recon-metrics-test-token"
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer recon-metrics-test-token")
    assert response.status_code == 200
    body = response.content.decode()
    assert 'tezgah_recon_open_breaks{bucket=">30"}' in body
