from celery import shared_task

from . import services


@shared_task(acks_late=True)
def deliver_outbound(sync_id=None):
    """A delivery loop's wake-up: deliver due messages in batches until none is left (safe to run twice:
    the claim decides). `sync_id` names the message whose change sent it; the loop claims it with the rest."""
    from . import delivery

    return delivery.pump()


@shared_task(acks_late=True)
def deliver_due():
    """Beat backstop for deliveries whose task was lost, and for retries that are due."""
    return services.deliver_due()


@shared_task(acks_late=True)
def reconcile_outbound():
    """Beat, every 5 minutes: re-enqueue unacknowledged messages, then dead-letter them after a cap."""
    return services.reconcile_outbound()


@shared_task(acks_late=True)
def redrive_after_outage():
    """Beat, every minute: replay the DLQ entries an ERP outage caused once its breaker closed."""
    return services.redrive_after_outage()
