from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ComplianceConfig(AppConfig):
    """Compliance evidence packages (issue 19). DESIGN.md places evidence in `governance`; that app is being
    built in parallel, so evidence lives here for now (docs/architecture.md)."""

    name = "apps.compliance"
    label = "compliance"
    verbose_name = _("Compliance")
