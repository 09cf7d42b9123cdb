from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ReconConfig(AppConfig):
    name = "apps.recon"
    label = "recon"
    verbose_name = _("ERP reconciliation")

    def ready(self):
        from apps.core.metrics import register_collector

        from .metrics import OpenBreaksCollector

        register_collector(OpenBreaksCollector())
