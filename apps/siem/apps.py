from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SiemConfig(AppConfig):
    name = "apps.siem"
    label = "siem"
    verbose_name = _("SIEM feed")

    def ready(self):
        from apps.core.metrics import register_collector

        from .metrics import BacklogCollector

        register_collector(BacklogCollector())
