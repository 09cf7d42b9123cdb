"""What the ERP app listens to; registered from ErpConfig.ready() so `jobs` never imports `erp`."""

from apps.core.circuit_breaker import breaker_closed, breaker_opened
from apps.events.registry import subscribe


def _not_from_the_erp(payload) -> bool:
    # Changes the ERP itself made (inbound progress) are not sent back to it.
    return payload["source"] != "erp"


def _on_job_status_changed(event):
    from . import services

    services.record_outbound(event)


def _on_job_status_changed_batch(events):
    from . import services

    services.record_outbound_batch(events)


def _on_breaker_closed(sender, name, **kwargs):
    from . import services

    services.note_outage_ended(name)


def _audit_breaker_closed(sender, name, **kwargs):
    from . import delivery_audit

    delivery_audit.breaker_changed(name, "closed")


def _audit_breaker_opened(sender, name, failures=None, **kwargs):
    from . import delivery_audit

    delivery_audit.breaker_changed(name, "opened", failures)


def _after_migrate(sender, **kwargs):
    from . import services

    services.default_profile()  # so health and the admin show the ERP_BASE_URL profile before any event


def register():
    from django.apps import apps
    from django.db.models.signals import post_migrate

    from apps.core.metrics import register_collector

    from .metrics import ErpStateCollector

    subscribe(
        "job.status.changed",
        _on_job_status_changed,
        key="erp.outbound",
        wants=_not_from_the_erp,
        batch=_on_job_status_changed_batch,
    )
    register_collector(ErpStateCollector())
    post_migrate.connect(_after_migrate, sender=apps.get_app_config("erp"), dispatch_uid="erp.default_profile")
    breaker_closed.connect(_on_breaker_closed, dispatch_uid="erp.redrive")
    breaker_closed.connect(_audit_breaker_closed, dispatch_uid="erp.audit.breaker_closed")
    breaker_opened.connect(_audit_breaker_opened, dispatch_uid="erp.audit.breaker_opened")
