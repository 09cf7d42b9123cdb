from celery import shared_task

from . import idempotency


@shared_task(acks_late=True)
def expire_idempotency_keys():
    """Beat: delete Idempotency-Key records older than IDEMPOTENCY_KEY_TTL_SECONDS (safe to run twice)."""
    return idempotency.expire_keys()
