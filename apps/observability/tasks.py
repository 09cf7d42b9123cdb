from celery import shared_task
from django.conf import settings

from . import services


@shared_task(acks_late=True)
def purge_request_stats():
    """Daily (beat): drop stored request statistics older than OBSERVABILITY_STATS_RETENTION_DAYS."""
    return services.purge_request_stats(older_than_days=settings.OBSERVABILITY_STATS_RETENTION_DAYS)
