import time

from celery import shared_task

from . import alerts, metrics, services


@shared_task(acks_late=True)
def write_report_export(export_id):
    """Write one export's file; a second run of a finished export does nothing."""
    started = time.time()
    try:
        services.write_export(export_id)
    finally:
        metrics.observe_export(export_id, started)
    return export_id


@shared_task(acks_late=True)
def evaluate_alert_rules():
    """Every minute (beat): evaluate every active rule and deliver what is due."""
    return alerts.evaluate_all()
