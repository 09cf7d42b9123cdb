"""Several relays and workers at once, and a worker killed mid-delivery (PostgreSQL: SKIP LOCKED, real processes)."""

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
import time_machine
from django.db import connection

from apps.erp import services
from apps.erp.models import ErpSync, SyncStatus
from apps.events import services as events
from apps.events.models import OutboxEvent, OutboxStatus
from apps.jobs import services as jobs
from apps.jobs.models import JobStatus
from tests import factories

from .conftest import ROOT

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def broker_down(monkeypatch):
    """Commits enqueue nothing, as when the broker is unreachable: only the sweeps move rows."""
    monkeypatch.setattr(events, "enqueue_dispatch", lambda event_id: None)
    monkeypatch.setattr(services, "enqueue_delivery", lambda sync_id, countdown=None: None)


def relay_without_sending(monkeypatch, **kwargs):
    """Hand events on but leave their ERP messages queued (the relay's worker died before sending)."""
    with monkeypatch.context() as patch:
        patch.setattr(services, "_lease_batch", lambda keys, handed_on, gate: [])
        return events.relay(**kwargs)


def in_threads(count, target):
    barrier = threading.Barrier(count)
    results, errors = [], []

    def run():
        try:
            barrier.wait()
            results.append(target())
        except Exception as exc:  # surfaced by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    return results


def test_two_relays_never_hand_an_event_on_twice(erp_profile, mock_erp, tenant_a, broker_down):
    for _ in range(40):
        jobs.change_status(factories.JobFactory(tenant=tenant_a), JobStatus.RUNNING)
    assert OutboxEvent.objects.filter(status=OutboxStatus.PENDING).count() == 40

    published = in_threads(2, lambda: events.relay(limit=5000))  # each relay also sends what it hands on
    assert sum(published) == 40
    keys = Counter(r["headers"]["Idempotency-Key"] for r in mock_erp.received())
    assert len(keys) == 40 and set(keys.values()) == {1}
    assert set(ErpSync.objects.values_list("status", flat=True)) == {SyncStatus.ACKED}


def test_two_dispatchers_never_double_send(erp_profile, mock_erp, tenant_a, broker_down, monkeypatch):
    for _ in range(40):
        jobs.change_status(factories.JobFactory(tenant=tenant_a), JobStatus.RUNNING)
    assert relay_without_sending(monkeypatch, limit=5000) == 40
    assert set(ErpSync.objects.values_list("status", flat=True)) == {SyncStatus.QUEUED}

    in_threads(2, lambda: services.deliver_due(limit=5000))
    keys = Counter(r["headers"]["Idempotency-Key"] for r in mock_erp.received())
    assert len(keys) == 40 and set(keys.values()) == {1}
    assert set(ErpSync.objects.values_list("status", flat=True)) == {SyncStatus.ACKED}


def test_claims_of_concurrent_relays_are_disjoint(db, tenant_a, broker_down):
    for _ in range(30):
        jobs.change_status(factories.JobFactory(tenant=tenant_a), JobStatus.RUNNING)
    claimed = in_threads(3, lambda: [e.pk for e in events.claim(limit=30)])
    flat = [pk for batch in claimed for pk in batch]
    assert len(flat) == len(set(flat)) == 30


def test_a_worker_killed_after_claiming_a_row_does_not_lose_it(erp_profile, mock_erp, job, broker_down, monkeypatch):
    jobs.change_status(job, JobStatus.RUNNING)
    relay_without_sending(monkeypatch)
    sync = ErpSync.objects.get()
    mock_erp.plan(delay_ms=4000)  # the ERP is slow: the worker is mid-request when it dies
    env = {**os.environ, "DATABASE_URL": _database_url(), "DJANGO_SETTINGS_MODULE": "config.settings"}
    worker = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import django; django.setup(); from apps.erp import services; services.deliver({sync.pk})",
        ],
        cwd=ROOT,
        env=env,
    )
    deadline = time.monotonic() + 20
    while ErpSync.objects.get(pk=sync.pk).status != SyncStatus.SENT:
        assert time.monotonic() < deadline, "the worker never claimed the row"
        time.sleep(0.05)
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait(10)

    sync.refresh_from_db()
    assert sync.status == SyncStatus.SENT and sync.attempts.count() == 0  # claimed, outcome never written
    assert services.deliver_due() == {}  # its lease still holds
    with time_machine.travel(sync.claimed_until + timedelta(seconds=1), tick=False):
        assert services.deliver_due() == {"acked": 1}
    sync.refresh_from_db()
    assert sync.status == SyncStatus.ACKED and sync.attempt_count == 2
    time.sleep(4.2)  # let the mock finish answering the dead worker's request
    received = mock_erp.received()
    assert {r["headers"]["Idempotency-Key"] for r in received} == {sync.idempotency_key}  # at least once, deduplicable


def _database_url():
    s = connection.settings_dict
    return f"postgres://{s['USER']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"
