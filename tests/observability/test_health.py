"""/healthz and /readyz beside /health/live and /health/ready: a registry of readiness checks."""

import pytest
from django.apps import apps

from apps.observability import health

from .conftest import BEARER

pytestmark = pytest.mark.django_db


def test_healthz_answers_without_asking_any_dependency(client, monkeypatch):
    monkeypatch.setattr(health, "_checks", {})
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]


def test_readyz_checks_database_broker_and_cache(client, internal_token):
    response = client.get("/readyz", **BEARER)
    assert response.status_code == 200
    checks = response.json()["checks"]
    assert {"database", "cache", "broker"} <= set(checks)
    assert all(c["status"] == "ok" and "ms" in c for c in checks.values())


def test_the_siem_check_is_registered_only_with_the_siem_app():
    names = {c.name for c in health.checks()}
    assert ("siem_backlog" in names) == apps.is_installed("apps.siem")


def test_a_failed_critical_check_makes_readyz_503_and_details_are_internal(client, internal_token, monkeypatch):
    def broken():
        raise ConnectionError("connection refused by 10.0.0.7:6379")

    monkeypatch.setitem(health._checks, "cache", health.Check("cache", broken))
    response = client.get("/readyz")
    assert response.status_code == 503
    expected = {"database": {"status": "ok"}, "cache": {"status": "fail"}, "broker": {"status": "ok"}}
    if apps.is_installed("apps.siem"):
        expected["siem_backlog"] = {"status": "ok"}
    assert response.json() == {"status": "fail", "checks": expected}
    detailed = client.get("/readyz", **BEARER).json()
    assert "connection refused" in detailed["checks"]["cache"]["detail"]


def test_a_non_critical_failure_is_a_warning_and_readyz_stays_200(client, monkeypatch, settings):
    settings.OBSERVABILITY_READYZ_SIEM_MAX_AGE_SECONDS = 60

    def old_backlog():
        raise RuntimeError("oldest unshipped SIEM record is 3600 s old")

    monkeypatch.setitem(health._checks, "siem_backlog", health.Check("siem_backlog", old_backlog, critical=False))
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"]["siem_backlog"] == {"status": "warn"}


def test_the_siem_backlog_check_compares_the_age_with_the_limit(monkeypatch, settings):
    import sys
    import types

    settings.OBSERVABILITY_READYZ_SIEM_MAX_AGE_SECONDS = 60
    fake = types.ModuleType("apps.siem.selectors")
    monkeypatch.setitem(sys.modules, "apps.siem", types.ModuleType("apps.siem"))
    monkeypatch.setitem(sys.modules, "apps.siem.selectors", fake)
    fake.backlog_age_seconds = lambda: 12.4
    assert health.check_siem_backlog() == "12 s"
    fake.backlog_age_seconds = lambda: 61.0
    with pytest.raises(RuntimeError, match="61 s old"):
        health.check_siem_backlog()


def test_the_old_probes_are_still_there(client):
    assert client.get("/health/live").status_code == 200
    assert client.get("/health/ready").status_code == 200
