from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "apps.accounts"
    label = "accounts"
    verbose_name = _("Accounts and tenants")


class TezgahAdminConfig(admin_apps.AdminConfig):
    """Django's admin with our MFA-enforcing site as the default, so third-party ModelAdmins land on it."""

    default = False
    default_site = "apps.accounts.admin_site.TezgahAdminSite"
