from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CoreConfig(AppConfig):
    name = "apps.core"
    label = "core"
    verbose_name = _("System")

    def ready(self):
        from . import idempotency

        # Idempotency-Keys are claimed after DRF has authenticated a request (see apps/core/idempotency.py).
        idempotency.install_drf_hook()
