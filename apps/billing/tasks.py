from celery import shared_task

from . import services


@shared_task(acks_late=True)
def expire_licenses():
    """Hourly: mark licenses past their end date as expired (safe to run twice)."""
    return services.expire_licenses()


@shared_task(acks_late=True)
def draft_monthly_invoices():
    """Hourly: after the grace days, draft last month's usage invoices (drafts rewritten, issued ones kept)."""
    return [inv.pk for inv in services.draft_monthly_invoices()]
