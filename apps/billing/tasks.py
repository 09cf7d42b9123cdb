from celery import shared_task

from . import services


@shared_task(acks_late=True)
def expire_licenses():
    """Hourly: mark licenses past their end date as expired (safe to run twice)."""
    return services.expire_licenses()
