"""Beat's recon work: poll the drop folders, reopen breaks whose suppression expired. Both safe to run twice."""

from celery import shared_task

from . import services


@shared_task(acks_late=True)
def poll_drop_folders():
    result = services.poll_drop_folders()
    return {"picked": result.picked, "waiting": result.waiting, "refused": result.refused}


@shared_task(acks_late=True)
def expire_suppressions():
    return services.expire_suppressions()
