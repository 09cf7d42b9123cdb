"""Third-party apps under our names: the admin's sidebar and headings read "Scheduled tasks", not "Periodic Tasks".

Django's documented way to rename an app is to list a subclass of its AppConfig in INSTALLED_APPS. The
models' names are set on `_meta` in `ready()`: `_meta.original_attrs` (what migrations compare) is left
alone, so no migration of a third-party app changes. The msgids live here, so `makemessages` keeps them.
"""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _
from django_celery_beat.apps import BeatConfig
from django_otp.plugins.otp_static.apps import DefaultConfig as OtpStaticConfig
from django_otp.plugins.otp_totp.apps import DefaultConfig as OtpTotpConfig


def _name_models(app_config, names):
    for model_name, (singular, plural) in names.items():
        meta = app_config.get_model(model_name)._meta
        meta.verbose_name, meta.verbose_name_plural = singular, plural


class KnoxConfig(AppConfig):
    name = "knox"
    verbose_name = _("API tokens")

    def ready(self):
        _name_models(self, {"AuthToken": (_("API token"), _("API tokens"))})


class TotpConfig(OtpTotpConfig):
    verbose_name = _("Authenticator apps")

    def ready(self):
        super().ready()
        _name_models(self, {"TOTPDevice": (_("authenticator app"), _("authenticator apps"))})


class StaticConfig(OtpStaticConfig):
    verbose_name = _("Backup codes")

    def ready(self):
        super().ready()
        _name_models(self, {"StaticDevice": (_("backup code set"), _("backup code sets"))})


class ScheduledTasksConfig(BeatConfig):
    verbose_name = _("Scheduled tasks")

    def ready(self):
        super().ready()
        _name_models(
            self,
            {
                "PeriodicTask": (_("scheduled task"), _("scheduled tasks")),
                "IntervalSchedule": (_("interval"), _("intervals")),
                "CrontabSchedule": (_("crontab schedule"), _("crontab schedules")),
                "SolarSchedule": (_("sunrise/sunset schedule"), _("sunrise/sunset schedules")),
                "ClockedSchedule": (_("one-off time"), _("one-off times")),
            },
        )
