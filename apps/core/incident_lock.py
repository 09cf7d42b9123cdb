"""The incident lock: one switch that freezes every write, except an explicit list of emergency operations.

State lives in one database row (IncidentLock, pk 1), read through the shared cache, so every web
process, worker and command sees the same switch. `INCIDENT_LOCK_ENABLED=true` holds the lock on
from boot whatever the row says, and turns the row on (audited) the first time a process looks; lifting
it means removing the variable, restarting, and turning the switch off with a reason.

Emergency operations are named; a view (or a ModelAdmin, or one admin action) declares the name it
performs with `emergency_op`, and it runs while locked only when that name is in
INCIDENT_LOCK_EMERGENCY_OPS. Changes send `lock_changed` inside their transaction; the security app
turns it into an audit entry (core imports no other app).
"""

from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.dispatch import Signal
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .models import IncidentLock
from .problems import problem_response

CACHE_KEY = "core:incident-lock:v1"
CACHE_SECONDS = 30
MUTATING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Views that write nothing of the business's even though they take a POST (the language switch).
_ALWAYS_OPEN = frozenset({"django.views.i18n.set_language"})
# issue 14: the passkey halves of signing in and of step-up are login steps too (POSTs of JSON).
PASSKEY_STEPS = (
    "mfa_passkey_begin",
    "mfa_passkey_complete",
    "mfa_step_up_passkey_begin",
    "mfa_step_up_passkey_complete",
)
# Emergency operation names the code knows; INCIDENT_LOCK_EMERGENCY_OPS picks which are allowed.
OP_LIFT_LOCK = "incident_lock"
OP_REVOKE_TOKEN = "auth.token_revoke"
OP_ERP_INBOUND = "erp.inbound"
OP_UNLOCK_ACCOUNT = "accounts.unlock"
# Sending: enabled, reason, actor, source ("admin", "command"), inside the transaction of the change.
lock_changed = Signal()


@dataclass(frozen=True)
class LockState:
    enabled: bool
    reason: str = ""
    changed_by: str = ""
    changed_at: str = ""
    forced_by_env: bool = False


def _stored_state() -> LockState:
    row = IncidentLock.objects.filter(pk=1).first()
    if row is None:
        return LockState(enabled=False)
    changed_at = row.changed_at.isoformat() if row.changed_at else ""
    return LockState(enabled=row.enabled, reason=row.reason, changed_by=row.changed_by, changed_at=changed_at)


_boot_recorded = {"done": False}
BOOT_REASON = "INCIDENT_LOCK_ENABLED at boot"


def _record_boot_lock() -> None:
    """Once per process: a boot with INCIDENT_LOCK_ENABLED turns the stored switch on, audited like any
    switch (only the first process finds it off). The row stays on after the variable is removed, until
    someone turns it off with a reason."""
    _boot_recorded["done"] = True
    if not IncidentLock.objects.filter(pk=1, enabled=True).exists():
        set_lock(True, reason=BOOT_REASON, actor=None, source="boot")


def state() -> LockState:
    """The lock as every process sees it: the env override, else the row (cached a few seconds at most)."""
    if settings.INCIDENT_LOCK_ENABLED:
        if not _boot_recorded["done"]:
            _record_boot_lock()
        return LockState(enabled=True, reason=str(_("INCIDENT_LOCK_ENABLED is set")), forced_by_env=True)
    cached = cache.get(CACHE_KEY)
    if cached is None:
        cached = _stored_state()
        cache.set(CACHE_KEY, cached, CACHE_SECONDS)
    return cached


def is_locked() -> bool:
    return state().enabled


def set_lock(enabled: bool, *, reason: str, actor=None, source: str = "admin") -> LockState:
    """Turn the lock on or off with a reason (required); audited through `lock_changed`."""
    reason = (reason or "").strip()
    if not reason:
        raise ValueError(str(_("Give a reason for turning the incident lock on or off.")))
    actor_name = getattr(actor, "get_username", lambda: "")() if actor is not None else source
    with transaction.atomic():
        row, _created = IncidentLock.objects.select_for_update().get_or_create(pk=1)
        was = row.enabled
        row.enabled = enabled
        row.reason = reason[:500]
        row.changed_by = actor_name[:150]
        row.changed_at = timezone.now()
        row.save()
        lock_changed.send(
            sender=IncidentLock, enabled=enabled, was_enabled=was, reason=row.reason, actor=actor, source=source
        )
        transaction.on_commit(lambda: cache.delete(CACHE_KEY))
    cache.delete(CACHE_KEY)
    return state()


def emergency_allowed(op: str | None) -> bool:
    return bool(op) and op in settings.INCIDENT_LOCK_EMERGENCY_OPS


def _view_op(request, view_func) -> str | None:
    """The emergency operation this request performs, if its view declares one."""
    op = getattr(view_func, "emergency_op", None) or getattr(getattr(view_func, "cls", None), "emergency_op", None)
    model_admin = getattr(view_func, "model_admin", None)
    if op is None and model_admin is not None:
        op = getattr(model_admin, "emergency_op", None)
        action = request.POST.get("action") if request.method == "POST" else None
        if op is None and action:
            op = getattr(model_admin, "emergency_actions", {}).get(action)
    return op


class IncidentLockMiddleware:
    """While locked: 423 problem+json for mutating API requests; the admin refuses writes with a message.

    Signing in to the admin (password, TOTP, enrolment) stays open: it is how an operator reaches the
    switch. Everything else that writes must be an allowed emergency operation.
    """

    def __init__(self, get_response):
        self.get_response = get_response
        self._open_admin_paths = None

    def __call__(self, request):
        return self.get_response(request)

    def _admin_open_paths(self):
        if self._open_admin_paths is None:
            names = ("login", "logout", "mfa_verify", "mfa_enrol", "mfa_step_up", *PASSKEY_STEPS)
            self._open_admin_paths = {reverse(f"admin:{name}") for name in names}
        return self._open_admin_paths

    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.method not in MUTATING_METHODS:
            return None
        admin_prefix = reverse("admin:index")
        is_admin = request.path.startswith(admin_prefix)
        if is_admin and request.path in self._admin_open_paths():
            return None
        if f"{getattr(view_func, '__module__', '')}.{getattr(view_func, '__name__', '')}" in _ALWAYS_OPEN:
            return None
        if not is_locked() or emergency_allowed(_view_op(request, view_func)):
            return None
        lock = state()
        # An API mounted under /admin/ (the DLQ replay) answers like every API: 423 problem+json.
        if is_admin and getattr(view_func, "cls", None) is None:
            from django.contrib import messages
            from django.http import HttpResponseRedirect

            messages.error(
                request,
                _("The incident lock is on: the console is read-only. Reason: %(reason)s") % {"reason": lock.reason},
            )
            return HttpResponseRedirect(request.get_full_path())
        response = problem_response(
            status_code=423,
            slug="incident-lock",
            title=_("Locked: the incident lock is on"),
            detail=_("Writes are refused until an operator lifts the incident lock."),
            instance=request.path,
            reason=lock.reason,
        )
        return response
