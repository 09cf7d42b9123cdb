"""Legal holds: placing and lifting them (audited, with a reason), and what they keep from deletion."""

from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.audit.services import record

from .models import HoldScope, LegalHold


class HoldError(ValueError):
    """A hold that cannot be placed or lifted as asked."""


def place_hold(actor, *, scope: str, reason: str, tenant=None, subject_id="", object_type="") -> LegalHold:
    """Place a legal hold; audited as governance.legal_hold.placed. `reason` is required."""
    from . import registry

    reason = (reason or "").strip()
    if not reason:
        raise HoldError("a legal hold needs a reason")
    if scope not in HoldScope.values:
        raise HoldError(f"unknown scope {scope!r}")
    needed = {HoldScope.TENANT: tenant, HoldScope.SUBJECT: subject_id, HoldScope.OBJECT_TYPE: object_type}
    if scope in needed and not needed[scope]:
        raise HoldError(f"a {scope} hold names its {scope}")
    if scope == HoldScope.OBJECT_TYPE and object_type not in registry.CLASSES:
        raise HoldError(f"unknown data class {object_type!r}")
    with transaction.atomic():
        hold = LegalHold.objects.create(
            scope=scope, reason=reason[:500], placed_by=actor if getattr(actor, "pk", None) else None,
            placed_at=timezone.now(), tenant=tenant if scope == HoldScope.TENANT else None,
            subject_id=str(subject_id) if scope == HoldScope.SUBJECT else "",
            object_type=object_type if scope == HoldScope.OBJECT_TYPE else "",
        )  # fmt: skip
        record(actor, "governance.legal_hold.placed", hold, _hold_payload(hold), tenant_id=hold.tenant_id)
    return hold


def lift_hold(hold: LegalHold, actor, *, reason: str) -> LegalHold:
    """Lift a standing hold; audited as governance.legal_hold.lifted. `reason` is required."""
    reason = (reason or "").strip()
    if not reason:
        raise HoldError("lifting a legal hold needs a reason")
    with transaction.atomic():
        hold = LegalHold.objects.select_for_update().get(pk=hold.pk)
        if hold.lifted_at is not None:
            raise HoldError("the hold was lifted already")
        hold.lifted_at = timezone.now()
        hold.lifted_by = actor if getattr(actor, "pk", None) else None
        hold.lift_reason = reason[:500]
        hold.save(update_fields=["lifted_at", "lifted_by", "lift_reason"])
        record(actor, "governance.legal_hold.lifted", hold, {**_hold_payload(hold), "lift_reason": hold.lift_reason},
               tenant_id=hold.tenant_id)  # fmt: skip
    return hold


def _hold_payload(hold):
    return {"hold": hold.pk, "scope": hold.scope, "tenant": hold.tenant_id, "subject": hold.subject_id,
            "object_type": hold.object_type, "reason": hold.reason}  # fmt: skip


@dataclass
class Holds:
    """The standing holds, as what they keep: everything, some data classes, some tenants, some subjects."""

    everything: LegalHold | None = None
    classes: dict = field(default_factory=dict)
    tenants: dict = field(default_factory=dict)
    subjects: dict = field(default_factory=dict)

    def blocking(self, data_class: str) -> LegalHold | None:
        """The hold that keeps all of `data_class`, if any."""
        return self.everything or self.classes.get(data_class)

    def exclusion(self, tenant_field, subject_field: str | None) -> Q | None:
        """The rows of a class that tenant and subject holds keep (None: none). `tenant_field` is one lookup path
        or a tuple of them (a row any of them ties to a held tenant is kept)."""
        q = Q()
        paths = (tenant_field,) if isinstance(tenant_field, str) else (tenant_field or ())
        for path in paths if self.tenants else ():
            q |= Q(**{f"{path}__in": list(self.tenants)})
        if self.subjects and subject_field:
            q |= Q(**{f"{subject_field}__in": list(self.subjects)})
        return q or None

    def on_subject(self, subject_id) -> LegalHold | None:
        return self.everything or self.subjects.get(str(subject_id))


def standing_holds() -> Holds:
    """Read the standing holds once (call inside the transaction that deletes, so a new hold is seen)."""
    holds = Holds()
    for hold in LegalHold.objects.filter(lifted_at__isnull=True).order_by("placed_at"):
        if hold.scope == HoldScope.GLOBAL:
            holds.everything = holds.everything or hold
        elif hold.scope == HoldScope.OBJECT_TYPE:
            holds.classes.setdefault(hold.object_type, hold)
        elif hold.scope == HoldScope.TENANT:
            holds.tenants.setdefault(hold.tenant_id, hold)
        elif hold.scope == HoldScope.SUBJECT:
            holds.subjects.setdefault(hold.subject_id, hold)
    return holds
