"""Recon's background work: an admin upload's load and run; beat's drop-folder poll and suppression sweep.

All safe to run twice (acks_late redelivery)."""

from celery import shared_task

from . import services


@shared_task(acks_late=True)
def poll_drop_folders():
    result = services.poll_drop_folders()
    return {"picked": result.picked, "waiting": result.waiting, "refused": result.refused}


@shared_task(acks_late=True)
def expire_suppressions():
    return services.expire_suppressions()


@shared_task(acks_late=True)
def load_uploaded_file(file_id, stored, actor_id, options):
    """Stage (and if asked, reconcile) a file the admin stored; progress in `services.progress_of`."""
    entry = services.load_uploaded(file_id, stored, actor_id, options)
    return {"file": file_id, "status": entry.status if entry else None}
