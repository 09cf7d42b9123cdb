from celery import shared_task

from . import services


@shared_task(acks_late=True)
def dispatch_event(event_id):
    """A relay's wake-up after a commit: hand on every due event, in batches, until none is left.

    `event_id` names the event whose commit sent the wake-up; the loop claims it with the others.
    """
    return services.relay_pump()


@shared_task(acks_late=True)
def relay_outbox():
    """Beat backstop: hand on every due event whose task was lost (broker down, worker killed)."""
    return services.relay()
