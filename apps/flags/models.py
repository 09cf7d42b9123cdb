"""Feature flags on django-waffle (WAFFLE_FLAG_MODEL = "flags.FeatureFlag"), with seed 001's fields and a
deterministic percentage: the bucket is a hash of the flag key and the user id, the same on every device
and inside Celery tasks (waffle's own percentage draws a random number and keeps it in a cookie)."""

import hashlib

from django.db import models
from django.utils.translation import gettext_lazy as _
from waffle.models import AbstractUserFlag


class State(models.TextChoices):
    ENABLED = "enabled", _("Enabled")
    DISABLED = "disabled", _("Disabled")


def bucket(key: str, user_id) -> float:
    """0.0 <= bucket < 100.0 for (flag key, user id): stable across processes, devices and releases."""
    digest = hashlib.sha256(f"tezgah-flag:{key}:{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 1000 / 10


class FeatureFlag(AbstractUserFlag):
    """`name` is the seed's `key`. `state` disabled: off for everybody. Enabled with no targeting: on for
    everybody. Enabled with targeting: on for the listed users (waffle `users`), roles (`groups`: roles are
    groups), superusers (`superusers`) and the `percent` of users whose bucket falls below it."""

    display_name = models.CharField(_("name"), max_length=200, blank=True)
    description = models.TextField(_("description"), blank=True)
    state = models.CharField(_("state"), max_length=10, choices=State.choices, default=State.DISABLED)

    class Meta(AbstractUserFlag.Meta):
        verbose_name = _("feature flag")
        verbose_name_plural = _("feature flags")

    def targeted(self) -> bool:
        if self.percent:
            return True
        if not self.pk:
            return False
        return self.users.exists() or self.groups.exists()

    def sync_everyone(self) -> None:
        """waffle's `everyone` from the seed's state and targeting (call after the users and roles are set)."""
        everyone = False if self.state == State.DISABLED else (None if self.targeted() else True)
        if everyone != self.everyone:
            self.everyone = everyone
            self.save()

    def _is_active_for_percent(self, request, read_only):
        user = getattr(request, "user", None)
        if not self.percent or user is None or not user.is_authenticated:
            return None
        return bucket(self.name, user.pk) < float(self.percent)
