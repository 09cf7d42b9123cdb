"""A real Celery worker process takes the license-expiry task from the real broker and runs it."""

import datetime as dt
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from apps.billing.models import LicenseState
from config.celery import app
from tests import factories

ROOT = Path(__file__).resolve().parents[2]


def _database_url():
    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.mark.postgres
@pytest.mark.filterwarnings("ignore:task_always_eager has no effect")
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_worker_process_runs_the_expiry_task_sent_through_redis():
    lic = factories.LicenseFactory(
        valid_from=dt.date(2025, 1, 1), valid_until=dt.date(2025, 12, 31), state=LicenseState.ACTIVE
    )
    queue = f"test-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": settings.REDIS_URL,
        "CELERY_TASK_ALWAYS_EAGER": "false",
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "-P", "solo", "-Q", queue, "--loglevel", "INFO"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        with app.connection_for_write(settings.REDIS_URL) as conn:
            app.send_task("apps.billing.tasks.expire_licenses", queue=queue, connection=conn)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            lic.refresh_from_db()
            if lic.state == LicenseState.EXPIRED:
                break
            time.sleep(0.5)
        assert lic.state == LicenseState.EXPIRED
    finally:
        worker.terminate()
        output, _ = worker.communicate(timeout=30)
    assert "apps.billing.tasks.expire_licenses" in output
