"""What the ERP app listens to; registered from ErpConfig.ready() so `jobs` never imports `erp`."""

from apps.core.circuit_breaker import breaker_closed
from apps.events.registry import subscribe


def _on_job_status_changed(event):
    from . import services

    services.record_outbound(event)


def _on_breaker_closed(sender, name, **kwargs):
    from . import services

    services.note_outage_ended(name)


def register():
    from apps.core.metrics import register_collector

    from .metrics import ErpStateCollector

    subscribe("job.status.changed", _on_job_status_changed, key="erp.outbound")
    register_collector(ErpStateCollector())
    breaker_closed.connect(_on_breaker_closed, dispatch_uid="erp.redrive")
