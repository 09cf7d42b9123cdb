from celery import shared_task

from . import services


@shared_task(acks_late=True)
def ship_siem():
    """Beat: collect new audit entries and checkpoints and send what waits, oldest first."""
    return services.ship()
