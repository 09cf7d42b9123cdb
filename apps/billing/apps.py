from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BillingConfig(AppConfig):
    name = "apps.billing"
    label = "billing"
    verbose_name = _("Billing")

    def ready(self):
        import atexit

        from . import metering, subscribers

        subscribers.register()
        atexit.register(metering.flush_at_exit)
