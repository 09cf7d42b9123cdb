from celery import shared_task

from . import services


@shared_task(acks_late=True)
def dispatch_event(event_id):
    """Hand one committed event to its subscribers (enqueued after commit)."""
    return services.dispatch_one(event_id)


@shared_task(acks_late=True)
def relay_outbox():
    """Beat backstop: hand on every due event whose task was lost (broker down, worker killed)."""
    return services.relay()
