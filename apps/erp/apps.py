from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ErpConfig(AppConfig):
    name = "apps.erp"
    label = "erp"
    verbose_name = _("ERP / MES")

    def ready(self):
        from . import subscribers

        subscribers.register()
