from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SecurityConfig(AppConfig):
    name = "apps.security"
    label = "security"
    verbose_name = _("Security")

    def ready(self):
        # Core cannot import the audit app; the security app records the incident lock's switches.
        from apps.core.incident_lock import lock_changed

        from . import services

        lock_changed.connect(services.record_incident_lock_change, dispatch_uid="security.incident_lock_audit")

        # issue 14: lockouts, the session list, and what ends a user's sessions.
        from . import signals

        signals.connect()
