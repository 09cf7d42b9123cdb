"""The Celery app: `celery -A config worker -B` runs a worker with beat."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("tezgah")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


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
