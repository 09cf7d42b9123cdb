from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class GovernanceConfig(AppConfig):
    name = "apps.governance"
    verbose_name = _("Data governance")
    default_auto_field = "django.db.models.BigAutoField"
