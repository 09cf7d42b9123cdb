"""Reporting fixtures: a small, hand-made set of jobs whose aggregates are known, and an analyst's clients."""

import datetime as dt
import zoneinfo

import pytest
from rest_framework.test import APIClient

from apps.jobs.models import JobStatus
from tests import factories
from tests.conftest import make_user, verified_client

IST = zoneinfo.ZoneInfo("Europe/Istanbul")


def at(day: int, hour: int = 12) -> dt.datetime:
    """An instant on November `day`, 2026, at `hour` o'clock Istanbul time."""
    return dt.datetime(2026, 11, day, hour, 0, tzinfo=IST)


@pytest.fixture
def catalog(tenant_a):
    m1 = factories.MachineFactory(tenant=tenant_a, code="M01", name="CNC Torna")
    m2 = factories.MachineFactory(tenant=tenant_a, code="M02", name="Kaynak Robotu")
    return {
        "m1": m1,
        "m2": m2,
        "p1": factories.PostFactory(tenant=tenant_a, machine=m1, code="M01-P1", name="Torna İstasyon 1"),
        "p2": factories.PostFactory(tenant=tenant_a, machine=m2, code="M02-P1", name="Kaynak Şasi"),
        "flans": factories.ModelTypeFactory(tenant=tenant_a, code="MT01", name="Flanş"),
        "disli": factories.ModelTypeFactory(tenant=tenant_a, code="MT02", name="Dişli ığdır"),
    }


# (day, hour, status, post, model type, duration ms): 10 jobs of tenant A, written out so totals are known.
JOB_TABLE = [
    (2, 9, JobStatus.SUCCEEDED, "p1", "flans", 1000),
    (2, 10, JobStatus.SUCCEEDED, "p1", "flans", 3000),
    (3, 11, JobStatus.FAILED, "p1", "disli", 7000),
    (3, 12, JobStatus.SUCCEEDED, "p2", "disli", 2000),
    (4, 1, JobStatus.SUCCEEDED, "p2", "flans", 5000),  # 01:00 Istanbul on the 4th is still the 3rd in UTC
    (4, 13, JobStatus.FAILED, "p2", "flans", 9000),
    (5, 14, JobStatus.CANCELLED, "p1", "flans", 4000),
    (5, 15, JobStatus.RUNNING, "p1", "disli", None),
    (6, 16, JobStatus.QUEUED, "p2", "disli", None),
    (6, 17, JobStatus.SUCCEEDED, "p2", "disli", 6000),
]


def make_job(tenant, catalog, day, hour, status, post, model_type, duration, **extra):
    post = catalog[post]
    created = at(day, hour)
    finished = created + dt.timedelta(milliseconds=duration) if duration is not None else None
    return factories.JobFactory(
        tenant=tenant,
        post=post,
        machine=post.machine,
        model_type=catalog[model_type],
        status=status,
        created_at=created,
        started_at=created if duration is not None else None,
        finished_at=finished,
        duration_ms=duration,
        progress=100 if status == JobStatus.SUCCEEDED else 0,
        **extra,
    )


@pytest.fixture
def jobs(tenant_a, catalog):
    return [make_job(tenant_a, catalog, *row) for row in JOB_TABLE]


@pytest.fixture
def other_tenant_job(tenant_b):
    """A job of tenant B, which tenant A's analyst must never see or count."""
    post = factories.PostFactory(tenant=tenant_b, code="M01-P1")
    return factories.JobFactory(
        tenant=tenant_b, post=post, machine=post.machine, status=JobStatus.FAILED, duration_ms=99_999, created_at=at(3)
    )


@pytest.fixture(autouse=True)
def _role_groups(request):
    """Transactional tests elsewhere (PostgreSQL runs) flush the role groups the migrations made; restore them."""
    if request.node.get_closest_marker("django_db") is None:
        return
    from django.apps import apps as django_apps
    from django.contrib.auth.models import Group

    from apps.accounts.roles import sync_role_groups

    request.getfixturevalue("django_db_setup")
    with request.getfixturevalue("django_db_blocker").unblock():
        if not Group.objects.filter(name="analyst").exists():
            sync_role_groups(django_apps)


@pytest.fixture
def analyst(role_users):
    return role_users["analyst"]


@pytest.fixture
def analyst_api(analyst):
    return verified_client(APIClient(), analyst)


@pytest.fixture
def operator_api(role_users):
    return verified_client(APIClient(), role_users["operator"])


@pytest.fixture
def other_analyst_api(tenant_b):
    return verified_client(APIClient(), make_user("analyst_b", roles=["analyst"], tenants=[tenant_b]))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item, nextitem):
    """After a transactional test's flush (which empties the role groups the migrations made), put the groups
    back, so the tests that follow, here or in later directories, find their roles."""
    yield
    marker = item.get_closest_marker("django_db")
    if marker is None or not marker.kwargs.get("transaction"):
        return
    from django.apps import apps as django_apps
    from pytest_django.plugin import blocking_manager_key

    from apps.accounts.roles import sync_role_groups

    with item.config.stash[blocking_manager_key].unblock():
        sync_role_groups(django_apps)


@pytest.fixture
def serial_live_server(live_server):
    """The live server, answering one request at a time when the test database is in-memory SQLite.

    Django's live server hands that one shared SQLite connection to every request thread; the overview's
    three fragments fetched at once then ran queries on it concurrently and hung the test. A file or
    PostgreSQL database gives each thread its own connection and keeps the real concurrency.
    """
    import threading

    from django.db import connection

    httpd = live_server.thread.httpd
    app = httpd.get_app()
    if connection.vendor != "sqlite" or not connection.is_in_memory_db():
        yield live_server
        return
    lock = threading.Lock()

    def one_at_a_time(environ, start_response):
        with lock:
            return app(environ, start_response)

    httpd.set_app(one_at_a_time)
    yield live_server
    httpd.set_app(app)
