"""Key rotation of a profile's key ring: each step advances it once, audited, the new secret shown once.

The ring is current (signs outbound, verifies inbound) plus next (verifies inbound only): while both
exist, an ERP signing with either passes. `rotate` retires current, promotes next to current and
generates a new next. A ring with no rows yet starts from the environment's KEYRING_CURRENT (or
ERP_SHARED_SECRET), so the key the ERP uses today keeps working, and gets a generated next.
"""

from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.audit import services as audit

from . import inbound_services, keyring
from .models import ErpKey, IntegrationProfile, KeyState


@dataclass(frozen=True)
class Rotation:
    """The result of one step; `new_next_secret` is shown to the operator once and stored only encrypted."""

    profile: IntegrationProfile
    current_fingerprint: str
    next_fingerprint: str
    retired_fingerprint: str | None
    new_next_secret: str
    started: bool  # True when this step created the ring instead of rotating it


def rotate(profile: IntegrationProfile, *, actor=None, source: str = "admin") -> Rotation:
    """Promote next to current and make a new next (or start the ring); one transaction, audited."""
    now = timezone.now()
    with transaction.atomic():
        # Lock the profile: two operators rotating at once would otherwise both promote the same key.
        IntegrationProfile.objects.select_for_update().get(pk=profile.pk)
        rows = {k.state: k for k in ErpKey.objects.filter(profile=profile, state__in=[KeyState.CURRENT, KeyState.NEXT])}
        current, nxt = rows.get(KeyState.CURRENT), rows.get(KeyState.NEXT)
        retired = None
        started = current is None
        if current is None:
            seed = settings.KEYRING_CURRENT or settings.ERP_SHARED_SECRET or keyring.new_secret()
            current = keyring.add_key(profile, seed, state=KeyState.CURRENT)
            ErpKey.objects.filter(pk=current.pk).update(activated_at=now)
            if nxt is None and settings.KEYRING_NEXT:
                nxt = keyring.add_key(profile, settings.KEYRING_NEXT, state=KeyState.NEXT)
        elif nxt is not None:
            retired = current
            ErpKey.objects.filter(pk=current.pk).update(state=KeyState.RETIRED, retired_at=now)
            ErpKey.objects.filter(pk=nxt.pk).update(state=KeyState.CURRENT, activated_at=now)
            current, nxt = nxt, None
        new_secret = None
        if nxt is None:
            new_secret = keyring.new_secret()
            nxt = keyring.add_key(profile, new_secret, state=KeyState.NEXT)
        result = Rotation(
            profile=profile,
            current_fingerprint=current.fingerprint,
            next_fingerprint=nxt.fingerprint,
            retired_fingerprint=retired.fingerprint if retired else None,
            new_next_secret=new_secret or "",
            started=started,
        )
        audit.record(
            actor,
            "erp.keys.rotated",
            profile,
            {
                "current": result.current_fingerprint,
                "next": result.next_fingerprint,
                "retired": result.retired_fingerprint,
                "started": started,
                "source": source,
            },
            tenant_id=profile.tenant_id,
        )
        transaction.on_commit(inbound_services.forget_credentials)
    inbound_services.forget_credentials()
    return result
