"""`Idempotency-Key` on every mutating API request: a replay gets the first response, applied once.

How an endpoint gets it: every DRF view (any `APIView` subclass, so any endpoint added later too) is
covered for POST, PUT and PATCH; nothing to add per view. A plain Django view opts in with `@idempotent`;
a DRF view opts out with the class attribute `idempotent = False` (the ERP inbound API does: it dedupes
its messages per integration profile itself, in the transaction of their effects).

A key belongs to one authenticated principal (the user, whichever way it authenticated), looked up only
after authentication; the fingerprint is method + path + body + that principal. A request with no
authenticated principal stores nothing and replays nothing. The first request with a key claims it (a
unique row committed before the handler runs), so a concurrent second request with the same key finds
the claim and gets 409 instead of running. Answers that mean "not processed, try again" (401, 403, 405,
423, 429, 5xx) are not stored: the claim is released and a retry runs for real.

Why the claim is made inside DRF's dispatch and not in the middleware's `process_view`: DRF
authenticates lazily, inside the view (`APIView.initial`), so before the view runs the middleware sees
only what the request *presents* (an `Authorization` header a gateway may add for everyone, a session
cookie DRF may ignore), not who it authenticates as. Scoping by a presented header let two users with
the same gateway header share keys and read each other's tokens and signed links (issue 11). So
`install_drf_hook()` (called from `CoreConfig.ready()`) extends `APIView.initial`: once DRF has
authenticated the request and checked its permissions and throttles, and only when the method has a
handler (a PUT to a POST-only endpoint is its 405, not a key conflict), the key is claimed for
`request.user`. Wrapping `initial` on the base class is the one place every DRF view, ours and
third-party ones (knox's token views), passes through after authentication; a base class of our own
would miss the third-party views. The middleware stores the answer when the response comes back.
"""

import base64
import hashlib
import tempfile
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpResponse
from django.utils import timezone
from django.utils.http import parse_header_parameters
from django.utils.translation import gettext_lazy as _

from .models import IdempotencyRecord, IdempotencyState
from .problems import Problem, problem_response

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
METHODS = frozenset({"POST", "PUT", "PATCH"})
MAX_KEY_LENGTH = 255
# Responses that did not process the request; storing them would pin a retry to a transient refusal.
_NOT_STORED = frozenset({401, 403, 405, 423, 429})
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


def owner_of(user) -> str | None:
    """The authenticated principal a key belongs to, as a hash; None for an anonymous caller (no key is kept).

    Pass the user authentication established (DRF's `request.user` after `initial()`, or Django's for a plain
    view), never anything read from the request's headers: a header says what was sent, not who sent it."""
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return _sha256("user", str(user.pk))


def fingerprint_of(request, owner: str) -> str:
    # A multipart body was hashed while it was spooled (spool_and_hash): its digest stands for its bytes, less the
    # boundary the client chose for this one request.
    body = getattr(request, "_idempotency_body_sha256", None)
    if body is None:
        body = request.body
    return _sha256(request.method, request.get_full_path(), owner, body)


_SPOOL_CHUNK = 64 * 1024


def is_multipart(request) -> bool:
    return request.META.get("CONTENT_TYPE", "").lower().startswith("multipart/")


def _boundary_of(request) -> bytes:
    _content_type, params = parse_header_parameters(request.META.get("CONTENT_TYPE", ""))
    return params.get("boundary", "").encode("latin-1", "replace")


class _BoundaryFreeDigest:
    """sha256 of a multipart body with its boundary replaced by a fixed marker, fed chunk by chunk.

    A client picks a fresh random boundary for every request (requests, curl, browsers), so a retry of the same
    upload differs only there; hashing the raw bytes made that retry a 422 "key reused" instead of the replay.
    Hand-written because no library hashes a stream with a substitution; the carry keeps a boundary that straddles
    two chunks whole.
    """

    _MARKER = b"--\0tezgah-multipart-boundary\0"

    def __init__(self, boundary: bytes):
        self._digest = hashlib.sha256(b"multipart-sha256:v2:")
        self._delimiter = b"--" + boundary if boundary else b""
        self._carry = b""

    def update(self, chunk: bytes) -> None:
        if not self._delimiter:
            self._digest.update(chunk)
            return
        data = self._carry + chunk
        start = 0
        while (found := data.find(self._delimiter, start)) >= 0:
            self._digest.update(data[start:found])
            self._digest.update(self._MARKER)
            start = found + len(self._delimiter)
        keep = len(self._delimiter) - 1  # the longest tail that may be the start of a delimiter
        rest = data[start:]
        if len(rest) > keep:
            self._digest.update(rest[: len(rest) - keep])
            rest = rest[len(rest) - keep :]
        self._carry = rest

    def hexdigest(self) -> str:
        self._digest.update(self._carry)
        self._carry = b""
        return self._digest.hexdigest()


def spool_and_hash(request) -> None:
    """Read a multipart body in chunks, hashing it and spooling it to a temporary file, then let the
    request read it from there: a keyed upload of any size is fingerprinted without being held in memory
    (`request.body` would hold it whole, and refuses more than DATA_UPLOAD_MAX_MEMORY_SIZE).

    The spool stays in memory up to FILE_UPLOAD_MAX_MEMORY_SIZE, then moves to FILE_UPLOAD_TEMP_DIR; it
    is closed with the request. Django's multipart parser (and DRF's) read `request._stream`.
    """
    digest = _BoundaryFreeDigest(_boundary_of(request))
    spool = tempfile.SpooledTemporaryFile(  # noqa: SIM115 (closed by the middleware after the response)
        max_size=settings.FILE_UPLOAD_MAX_MEMORY_SIZE, dir=settings.FILE_UPLOAD_TEMP_DIR
    )
    for chunk in iter(lambda: request._stream.read(_SPOOL_CHUNK), b""):
        digest.update(chunk)
        spool.write(chunk)
    spool.seek(0)
    request._stream = spool
    request._read_started = False
    request._idempotency_body_sha256 = digest.hexdigest()
    request._idempotency_spool = spool


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


# What the OpenAPI schema states for the header (apps/core/openapi.py), the same rule as _valid_key.
KEY_PATTERN = r"^[!-~]{1,255}$"


class Refusal(Exception):
    """Why a key cannot be used for this request; rendered as a problem by the caller."""

    def __init__(self, status_code: int, slug: str, title: str, detail: str, retry_after: int | None = None):
        super().__init__(detail)
        self.status_code = status_code
        self.slug = slug
        self.title = title
        self.detail = detail
        self.retry_after = retry_after


def begin(request, *, user) -> HttpResponse | None:
    """Claim the request's key for `user` (the authenticated principal), or answer instead of the handler.

    Returns None when the handler should run (claimed: the middleware stores its answer; or nothing to
    do: no key, no principal), the stored response for a replay, or raises Refusal (400, 409, 422).
    `request` is the Django HttpRequest. Call only after authentication."""
    if request.method not in METHODS or HEADER not in request.headers:
        return None
    key = request.headers[HEADER]
    if not _valid_key(key):
        raise Refusal(
            400,
            "invalid-idempotency-key",
            _("Invalid Idempotency-Key"),
            _("An Idempotency-Key is 1 to 255 visible ASCII characters."),
        )
    owner = owner_of(user)
    if owner is None:
        return None
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
        raise Refusal(
            422,
            "idempotency-key-reused",
            _("Idempotency-Key reused with a different request"),
            _("This key was first used for another method, path or body; use a new key."),
        )
    if outcome.kind == "replay":
        replayed = replay_response(outcome.record)
        if replayed is not None:
            return replayed
    raise Refusal(
        409,
        "idempotency-key-in-use",
        _("A request with this Idempotency-Key is in progress"),
        _("Retry after the first request has been answered."),
        retry_after=1,
    )


def _refusal_response(request, refusal: Refusal) -> HttpResponse:
    response = problem_response(
        status_code=refusal.status_code,
        slug=refusal.slug,
        title=refusal.title,
        detail=refusal.detail,
        instance=request.path,
    )
    if refusal.retry_after is not None:
        response["Retry-After"] = str(refusal.retry_after)
    return response


def _claim_after_drf_authentication(view, request) -> None:
    """The part of `APIView.initial` this module adds: runs after authentication, permissions, throttles."""
    django_request = request._request
    if not getattr(django_request, "_idempotency_active", False) or not getattr(type(view), "idempotent", True):
        return
    method = request.method.lower()
    if method not in view.http_method_names or not hasattr(view, method):
        return  # DRF answers 405 next; a key sent with a wrong method is no conflict
    try:
        replayed = begin(django_request, user=request.user)
    except Refusal as refusal:
        problem = Problem(
            status_code=refusal.status_code, slug=refusal.slug, title=refusal.title, detail=refusal.detail
        )
        problem.wait = refusal.retry_after  # DRF's handler turns `wait` into Retry-After
        raise problem from None
    if replayed is not None:
        # dispatch() calls the handler it finds on the instance next: answer with the stored response.
        setattr(view, method, lambda *args, **kwargs: replayed)


def install_drf_hook() -> None:
    """Extend `APIView.initial` once (CoreConfig.ready); see the module docstring for why here."""
    from rest_framework.views import APIView

    if getattr(APIView.initial, "_claims_idempotency_keys", False):
        return
    original = APIView.initial

    def initial(self, request, *args, **kwargs):
        original(self, request, *args, **kwargs)
        _claim_after_drf_authentication(self, request)

    initial._claims_idempotency_keys = True
    APIView.initial = initial


class IdempotencyMiddleware:
    """Put it after authentication and the incident lock: a locked request claims nothing.

    It stores the answer to a claimed key. DRF views claim inside their dispatch, after DRF has
    authenticated the request (install_drf_hook); a plain Django view marked `@idempotent` claims here,
    for the user Django's AuthenticationMiddleware established. Problem titles stay English, like every
    API problem (docs/api.md): callers match on `type`.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request._idempotency_active = True
        spooled = False
        if request.method in METHODS and HEADER in request.headers:
            if is_multipart(request):
                # An upload: hash it in chunks on its way to a temporary file, never whole in memory.
                spool_and_hash(request)
                spooled = True
            else:
                # Read (and cache) the body now: the fingerprint needs it after DRF may have parsed the stream.
                request.body  # noqa: B018
        try:
            response = self.get_response(request)
        finally:
            if spooled:
                request._idempotency_spool.close()
        record = getattr(request, "_idempotency_claim", None)
        if record is not None:
            complete(record, response)
        return response

    def process_view(self, request, view_func, view_args, view_kwargs):
        if getattr(view_func, "idempotent", None) is not True:
            return None  # DRF views claim after their own authentication; unmarked views take no key
        try:
            return begin(request, user=getattr(request, "user", None))
        except Refusal as refusal:
            return _refusal_response(request, refusal)
