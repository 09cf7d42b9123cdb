from celery import shared_task
from django.conf import settings


@shared_task(acks_late=True)
def apply_retention():
    """Apply every retention policy in batches; an interrupted run resumes (safe to run twice)."""
    if not settings.DATA_GOVERNANCE_ENABLED:
        return 0
    from .retention import apply_all

    return sum(run.deleted for run in apply_all())
