from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "apps.accounts"
    label = "accounts"
    verbose_name = _("Accounts and tenants")

    def ready(self):
        from django.contrib.auth.signals import user_logged_out

        from . import checks, otp_secrets  # noqa: F401 (checks registers itself)

        otp_secrets.install_encrypted_totp_key()

        # Django's only hook for a logout; the receiver just records it.
        user_logged_out.connect(_audit_logout, dispatch_uid="accounts.audit_logout")


def _audit_logout(sender, request, user, **kwargs):
    if user is not None:
        from . import services

        services.note_sign_in_event("auth.logout", user=user)


class TezgahAdminConfig(admin_apps.AdminConfig):
    """Django's admin with our MFA-enforcing site as the default, so third-party ModelAdmins land on it."""

    default = False
    default_site = "apps.accounts.admin_site.TezgahAdminSite"
