"""The Celery app: `celery -A config worker -B` runs a worker with beat."""

import os
import warnings

from celery import Celery
from celery.exceptions import SecurityWarning
from celery.signals import celeryd_init, setup_logging

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("tezgah")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@setup_logging.connect
def _log_like_django(**kwargs):
    # Connected, Celery leaves logging alone: the worker and beat then write settings.LOGGING's JSON lines
    # (UTC timestamps) like the web and the sealer, instead of Celery's own format in local time.
    from logging.config import dictConfig

    from django.conf import settings

    dictConfig(settings.LOGGING)


@celeryd_init.connect
def _root_warning_once(**kwargs):
    # Sent just before Celery checks for root. `make run` (DEBUG) on a developer's machine or in a container
    # often runs as root; `manage.py welcome` says so once, with the advice to run production workers
    # unprivileged (the Dockerfile does). Without DEBUG, Celery's warning stays.
    from django.conf import settings

    if settings.DEBUG:
        warnings.filterwarnings("ignore", category=SecurityWarning)


@app.on_after_finalize.connect
def _connect_connection_hygiene(sender, **kwargs):
    from celery.signals import task_prerun

    task_prerun.connect(_drop_broken_or_old_connections, weak=False)


def _drop_broken_or_old_connections(task=None, **kwargs):
    # Connections are reused across tasks (CELERY_DB_REUSE_MAX); like Django's request cycle, drop the
    # ones past CONN_MAX_AGE or failing their health check, so a database restart costs one reconnect.
    # Not for eager tasks: they run inside the caller's transaction.
    if task is not None and getattr(task.request, "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()
