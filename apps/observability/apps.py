from django.apps import AppConfig, apps
from django.utils.translation import gettext_lazy as _


class ObservabilityConfig(AppConfig):
    name = "apps.observability"
    label = "observability"
    verbose_name = _("Observability")

    def ready(self):
        from apps.core import circuit_breaker
        from apps.core.metrics import register_collector

        from . import health, tracing
        from .metrics import AuditStateCollector, SiemStateCollector

        register_collector(AuditStateCollector())
        health.register_check("database", health.check_database)
        health.register_check("cache", health.check_cache)
        health.register_check("broker", health.check_broker)
        if apps.is_installed("apps.siem"):
            health.register_check("siem_backlog", health.check_siem_backlog, critical=False)
            register_collector(SiemStateCollector())
        if apps.is_installed("apps.erp"):
            # ERP breakers are per profile: list every enabled profile's, not only those this process built.
            from apps.erp.selectors import breaker_states

            circuit_breaker.register_source(breaker_states)
        tracing.setup_tracing()
