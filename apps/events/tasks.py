from celery import shared_task

from . import services


@shared_task(acks_late=True)
def dispatch_event(event_id):
    """Hand one committed event to its subscribers (enqueued after commit)."""
    return services.relay(event_ids=[event_id], limit=1)


@shared_task(acks_late=True)
def relay_outbox():
    """Beat backstop: hand on every due event whose task was lost (broker down, worker killed)."""
    return services.relay()
