"""What the session remembers between the password step and the TOTP step, and when step-up was last done."""

import hmac
import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils.crypto import salted_hmac

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


# A code e-mailed to the owner (accounts.services.send_owner_proof_code) lives in this password step only.
OWNER_CODE_TRIES = 5
OWNER_CODE_RESEND_SECONDS = 60


def _owner_code_digest(uid, code: str) -> str:
    return salted_hmac("tezgah.mfa.owner-code", f"{uid}:{code}").hexdigest()


def remember_owner_code(request, code: str) -> None:
    pending = request.session.get(PENDING_KEY)
    if pending is not None:
        digest = _owner_code_digest(pending["uid"], code)
        request.session[PENDING_KEY] = {**pending, "owner_code": digest, "owner_code_at": time.time(), "tries": 0}


def owner_code_sent_recently(request) -> bool:
    sent_at = (request.session.get(PENDING_KEY) or {}).get("owner_code_at", 0)
    return time.time() - sent_at < OWNER_CODE_RESEND_SECONDS


def check_owner_code(request, code: str) -> bool:
    """Whether `code` is the one e-mailed in this password step; a few wrong tries void it."""
    pending = request.session.get(PENDING_KEY)
    if not pending or not pending.get("owner_code"):
        return False
    tries = pending.get("tries", 0) + 1
    ok = hmac.compare_digest(pending["owner_code"], _owner_code_digest(pending["uid"], code))
    if ok:
        pending = {**pending, "owner_proven": True, "owner_code": None}
    elif tries >= OWNER_CODE_TRIES:
        pending = {**pending, "owner_code": None, "tries": 0}
    else:
        pending = {**pending, "tries": tries}
    request.session[PENDING_KEY] = pending
    return ok


def owner_proven(request) -> bool:
    return bool((request.session.get(PENDING_KEY) or {}).get("owner_proven"))


def pending_next(request, default: str) -> str:
    return (request.session.get(PENDING_KEY) or {}).get("next") or default


def forget_password_step(request) -> None:
    request.session.pop(PENDING_KEY, None)


def mark_stepped_up(request) -> None:
    request.session[STEPUP_KEY] = time.time()


def stepped_up_recently(request) -> bool:
    at = request.session.get(STEPUP_KEY)
    return bool(at) and time.time() - at <= settings.MFA_STEPUP_TTL_SECONDS
