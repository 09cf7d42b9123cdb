"""System checks of the accounts settings (run by migrate, runserver and `check --deploy`)."""

from django.core import checks
from django.core.exceptions import ImproperlyConfigured


# Deploy only: the build (translations, static files) runs without secrets; first use fails loudly instead.
@checks.register(checks.Tags.security, deploy=True)
def otp_encryption_key_check(app_configs, **kwargs):
    from .otp_secrets import key_ring

    try:
        key_ring()
    except ImproperlyConfigured as error:
        return [checks.Error(str(error), id="accounts.E001")]
    return []
