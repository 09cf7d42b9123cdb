"""What the session remembers between the password step and the TOTP step, and when step-up was last done."""

import time

from django.conf import settings
from django.contrib.auth import get_user_model

PENDING_KEY = "mfa_pending"
STEPUP_KEY = "mfa_stepup_at"
BACKUP_CODES_KEY = "mfa_new_backup_codes"


def remember_password_step(request, user, *, next_url: str) -> None:
    request.session[PENDING_KEY] = {
        "uid": user.pk,
        "at": time.time(),
        "backend": user.backend,
        "next": next_url,
    }


def pending_user(request):
    """The user who passed the password step in the last MFA_PENDING_TTL_SECONDS, or None."""
    pending = request.session.get(PENDING_KEY)
    if not pending or time.time() - pending.get("at", 0) > settings.MFA_PENDING_TTL_SECONDS:
        request.session.pop(PENDING_KEY, None)
        return None
    user = get_user_model().objects.filter(pk=pending["uid"], is_active=True, is_staff=True).first()
    if user is not None:
        user.backend = pending["backend"]
    return user


def pending_enrolment_device_id(request):
    """The unconfirmed device this password step is enrolling, so its secret stays put between page loads."""
    return (request.session.get(PENDING_KEY) or {}).get("enrol_device")


def remember_enrolment_device(request, device) -> None:
    pending = request.session.get(PENDING_KEY)
    if pending is not None and pending.get("enrol_device") != device.pk:
        request.session[PENDING_KEY] = {**pending, "enrol_device": device.pk}


def pending_next(request, default: str) -> str:
    return (request.session.get(PENDING_KEY) or {}).get("next") or default


def forget_password_step(request) -> None:
    request.session.pop(PENDING_KEY, None)


def mark_stepped_up(request) -> None:
    request.session[STEPUP_KEY] = time.time()


def stepped_up_recently(request) -> bool:
    at = request.session.get(STEPUP_KEY)
    return bool(at) and time.time() - at <= settings.MFA_STEPUP_TTL_SECONDS
