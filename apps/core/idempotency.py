"""`Idempotency-Key` on every mutating API request: a replay gets the first response, applied once.

How an endpoint gets it: every DRF view (any `APIView` subclass, so any endpoint added later too) is
covered for POST, PUT and PATCH by `IdempotencyMiddleware`; nothing to add per view. A plain Django
view opts in with `@idempotent`; a DRF view opts out with the class attribute `idempotent = False`.

A key belongs to one caller (the credential in `Authorization`, else the session's user, else the
client IP); the fingerprint is method + path + body + that caller. The first request with a key claims
it (a unique row committed before the view runs), so a concurrent second request with the same key
finds the claim and gets 409 instead of running. Answers that mean "not processed, try again"
(401, 403, 423, 429, 5xx) are not stored: the claim is released and a retry runs for real.
"""

import base64
import hashlib
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .models import IdempotencyRecord, IdempotencyState
from .problems import problem_response

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
METHODS = frozenset({"POST", "PUT", "PATCH"})
MAX_KEY_LENGTH = 255
# Responses that did not process the request; storing them would pin a retry to a transient refusal.
_NOT_STORED = frozenset({401, 403, 423, 429})
_KEPT_HEADERS = ("Content-Type", "Content-Language", "Location")


def idempotent(view_func):
    """Opt a plain Django view in (DRF views are covered already)."""
    view_func.idempotent = True
    return view_func


def applies_to(view_func) -> bool:
    explicit = getattr(view_func, "idempotent", None)
    if explicit is not None:
        return bool(explicit)
    view_class = getattr(view_func, "cls", None)
    if view_class is None:
        return False
    from rest_framework.views import APIView

    return issubclass(view_class, APIView) and getattr(view_class, "idempotent", True)


def _sha256(*parts: bytes | str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
        digest.update(b"\0")
    return digest.hexdigest()


def owner_of(request) -> str:
    """Who is asking, as a hash: the credential sent, else the session's user, else the client address."""
    credential = request.META.get("HTTP_AUTHORIZATION", "")
    if credential:
        return _sha256("credential", credential)
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return _sha256("user", str(user.pk))
    return _sha256("address", getattr(request, "client_ip", "") or request.META.get("REMOTE_ADDR", ""))


def fingerprint_of(request, owner: str) -> str:
    return _sha256(request.method, request.get_full_path(), owner, request.body)


@lru_cache(maxsize=4)
def _fernet(secret_key: str) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(f"idempotency:{secret_key}".encode()).digest()))


def _seal(body: bytes) -> bytes:
    return _fernet(settings.SECRET_KEY).encrypt(body)


def _open(sealed: bytes) -> bytes:
    return _fernet(settings.SECRET_KEY).decrypt(bytes(sealed))


@dataclass
class Outcome:
    kind: str  # "claimed" | "replay" | "in_progress" | "mismatch"
    record: IdempotencyRecord


def _expired(record, now) -> bool:
    if record.created_at <= now - timedelta(seconds=settings.IDEMPOTENCY_KEY_TTL_SECONDS):
        return True
    # A claim whose process died never completes; after the timeout another request may take it over.
    stale = now - timedelta(seconds=settings.IDEMPOTENCY_CLAIM_TIMEOUT_SECONDS)
    return record.state == IdempotencyState.IN_PROGRESS and record.created_at <= stale


def claim(*, owner: str, key: str, fingerprint: str, method: str, path: str) -> Outcome:
    """Claim `key` for this request, or say why not: a stored response to replay, a claim in progress,
    or a different request that used the key first. The claim is committed at once (its own
    transaction), which is what makes a concurrent request with the same key see it."""
    for _attempt in range(3):
        now = timezone.now()
        try:
            with transaction.atomic():
                record = IdempotencyRecord.objects.create(
                    owner=owner,
                    key=key,
                    fingerprint=fingerprint,
                    method=method,
                    path=path[:500],
                    state=IdempotencyState.IN_PROGRESS,
                    created_at=now,
                )
            return Outcome("claimed", record)
        except IntegrityError:
            pass
        record = IdempotencyRecord.objects.filter(owner=owner, key=key).first()
        if record is None:
            continue  # released between our insert and our read; try again
        if _expired(record, now):
            IdempotencyRecord.objects.filter(pk=record.pk, created_at=record.created_at).delete()
            continue
        if record.fingerprint != fingerprint:
            return Outcome("mismatch", record)
        if record.state == IdempotencyState.IN_PROGRESS:
            return Outcome("in_progress", record)
        return Outcome("replay", record)
    return Outcome("in_progress", record)


def complete(record: IdempotencyRecord, response) -> None:
    """Store `response` as the answer to the claimed key, or release the claim when it must not be kept."""
    if response.streaming or response.status_code >= 500 or response.status_code in _NOT_STORED:
        release(record)
        return
    headers = {name: response[name] for name in _KEPT_HEADERS if response.has_header(name)}
    IdempotencyRecord.objects.filter(pk=record.pk).update(
        state=IdempotencyState.DONE,
        status_code=response.status_code,
        response_headers=headers,
        response_body=_seal(response.content),
        completed_at=timezone.now(),
    )


def release(record: IdempotencyRecord) -> None:
    IdempotencyRecord.objects.filter(pk=record.pk, state=IdempotencyState.IN_PROGRESS).delete()


def replay_response(record: IdempotencyRecord) -> HttpResponse | None:
    """The stored response again, marked `Idempotent-Replayed: true`; None when it cannot be decrypted."""
    try:
        body = _open(record.response_body)
    except InvalidToken:
        return None
    response = HttpResponse(body, status=record.status_code)
    for name, value in record.response_headers.items():
        response[name] = value
    response[REPLAYED_HEADER] = "true"
    return response


def expire_keys(*, now=None) -> int:
    """Delete keys older than IDEMPOTENCY_KEY_TTL_SECONDS; returns how many (the beat task calls this)."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.IDEMPOTENCY_KEY_TTL_SECONDS)
    deleted, _counts = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    return deleted


def _valid_key(key: str) -> bool:
    return 0 < len(key) <= MAX_KEY_LENGTH and all(33 <= ord(c) <= 126 for c in key)


class IdempotencyMiddleware:
    """Put it after authentication and the incident lock: a locked request claims nothing.

    Problem titles stay English, like every API problem (docs/api.md): callers match on `type`.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        record = getattr(request, "_idempotency_claim", None)
        if record is not None:
            complete(record, response)
        return response

    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.method not in METHODS or HEADER not in request.headers:
            return None
        if not applies_to(view_func):
            return None
        key = request.headers[HEADER]
        if not _valid_key(key):
            return problem_response(
                status_code=400,
                slug="invalid-idempotency-key",
                title=_("Invalid Idempotency-Key"),
                detail=_("An Idempotency-Key is 1 to 255 visible ASCII characters."),
                instance=request.path,
            )
        owner = owner_of(request)
        outcome = claim(
            owner=owner,
            key=key,
            fingerprint=fingerprint_of(request, owner),
            method=request.method,
            path=request.get_full_path(),
        )
        if outcome.kind == "claimed":
            request._idempotency_claim = outcome.record
            return None
        if outcome.kind == "mismatch":
            return problem_response(
                status_code=422,
                slug="idempotency-key-reused",
                title=_("Idempotency-Key reused with a different request"),
                detail=_("This key was first used for another method, path or body; use a new key."),
                instance=request.path,
            )
        if outcome.kind == "replay":
            replayed = replay_response(outcome.record)
            if replayed is not None:
                return replayed
        response = problem_response(
            status_code=409,
            slug="idempotency-key-in-use",
            title=_("A request with this Idempotency-Key is in progress"),
            detail=_("Retry after the first request has been answered."),
            instance=request.path,
        )
        response["Retry-After"] = "1"
        return response
