"""Reading and changing feature flags; every change is audited (`flags.<change>`)."""

from types import SimpleNamespace

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from waffle import get_waffle_flag_model

from apps.accounts.capabilities import ROLES
from apps.audit import services as audit

from .models import FeatureFlag, State


def _request_for(user):
    """What waffle reads from a request, for a user outside one (Celery tasks, services)."""
    return SimpleNamespace(user=user, GET={}, COOKIES={}, headers={}, LANGUAGE_CODE="tr")


def is_enabled(key: str, user, *, request=None, default: bool = False) -> bool:
    """Whether flag `key` is on for `user` (cached by waffle for FEATURE_FLAGS_CACHE_TTL); a flag that does
    not exist answers `default`."""
    flag = get_waffle_flag_model().get(key)
    if not flag.pk:
        return default
    return bool(flag.is_active(request if request is not None else _request_for(user), read_only=True))


def enabled_for(user) -> list[str]:
    request = _request_for(user)
    return sorted(f.name for f in get_waffle_flag_model().get_all() if f.is_active(request, read_only=True))


def describe(flag: FeatureFlag) -> dict:
    return {
        "key": flag.name,
        "name": flag.display_name,
        "description": flag.description,
        "state": flag.state,
        "percentage": float(flag.percent) if flag.percent is not None else None,
        "allowed_users": sorted(flag.users.values_list("username", flat=True)),
        "allowed_roles": sorted(flag.groups.values_list("name", flat=True)),
        "superusers": flag.superusers,
        "modified": flag.modified.isoformat(),
    }


def _apply(flag: FeatureFlag, data: dict) -> None:
    for field, attr in (("name", "display_name"), ("description", "description"), ("state", "state")):
        if field in data:
            setattr(flag, attr, data[field])
    if "percentage" in data:
        flag.percent = data["percentage"]
    from django.utils import timezone

    flag.modified = timezone.now()
    flag.save()
    if "allowed_users" in data:
        flag.users.set(get_user_model().objects.filter(username__in=data["allowed_users"]))
    if "allowed_roles" in data:
        flag.groups.set(Group.objects.filter(name__in=[r for r in data["allowed_roles"] if r in ROLES]))
    flag.sync_everyone()
    flag.flush()


def create(data: dict, *, actor) -> FeatureFlag:
    with transaction.atomic():
        flag = FeatureFlag(name=data["key"], superusers=True)
        _apply(flag, data)
        audit.record(actor, "flags.created", flag, describe(flag))
    return flag


def update(flag: FeatureFlag, data: dict, *, actor, change: str = "updated") -> FeatureFlag:
    with transaction.atomic():
        before = describe(flag)
        _apply(flag, data)
        after = describe(flag)
        changed = {k: {"from": before[k], "to": after[k]} for k in after if before[k] != after[k] and k != "modified"}
        audit.record(actor, f"flags.{change}", flag, {"key": flag.name, "changed": changed})
    return flag


def delete(flag: FeatureFlag, *, actor) -> None:
    with transaction.atomic():
        audit.record(actor, "flags.deleted", flag, describe(flag))
        flag.flush()
        flag.delete()


def set_state(flag: FeatureFlag, state: str, *, actor) -> FeatureFlag:
    return update(flag, {"state": state}, actor=actor, change="enabled" if state == State.ENABLED else "disabled")
