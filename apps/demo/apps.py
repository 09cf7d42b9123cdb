from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DemoConfig(AppConfig):
    """The zero-setup demo: seeds every app's demo rows, prints the welcome text, runs the Procfile."""

    name = "apps.demo"
    label = "demo"
    verbose_name = _("Demo data")
