"""Inbound progress from the ERP: who may send it (IP, bearer token, signature), and applying it once.

Checks run in the order IP, token, signature, schema, so a caller that fails one learns nothing about
the next. A message is applied through `jobs.services.change_status` in one transaction with its audit
entry and its inbound `erp_mes_sync` row; a message older (`ext_ts`) than the last applied one for the
job is recorded and acknowledged without moving the job back; a repeated X-Request-Id or
Idempotency-Key gets the first answer and changes nothing.
"""

import hashlib
import hmac
import re
import time
import uuid
from dataclasses import dataclass, field

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, connection, transaction
from django.db.models.signals import post_delete, post_save
from django.utils import timezone

from apps.audit import services as audit
from apps.audit.models import ActorType
from apps.core.client_ip import address_in
from apps.jobs import services as job_services
from apps.jobs.exceptions import IllegalTransition, InvalidProgress
from apps.jobs.models import Job, StatusSource

from . import keyring, signing
from .models import Direction, ErpKey, ErpSync, IntegrationProfile, SyncStatus

AUDIT_ACTION = "erp.inbound.progress"


class InboundRefused(Exception):
    """A refusal with its HTTP status and problem slug; the API turns it into problem+json."""

    def __init__(self, status_code: int, slug: str, title: str, detail: str = "", **extra):
        super().__init__(detail or title)
        self.status_code = status_code
        self.slug = slug
        self.title = title
        self.detail = detail
        self.extra = extra


@dataclass
class Caller:
    """The integration profile a bearer token belongs to; `profile` is None for the ERP_BEARER_TOKEN default."""

    profile: IntegrationProfile | None

    @property
    def ident(self) -> str:
        return f"profile-{self.profile.pk}" if self.profile is not None else "env"


@dataclass
class Outcome:
    status_code: int
    body: dict = field(default_factory=lambda: {"ok": True})
    sync: ErpSync | None = None
    replayed: bool = False


def set_inbound_token(profile: IntegrationProfile, token: str, *, actor=None) -> None:
    """Store only the hash of `token` as the profile's inbound bearer token; audited (never the token)."""
    with transaction.atomic():
        IntegrationProfile.objects.filter(pk=profile.pk).update(inbound_token_sha256=keyring.token_hash(token))
        audit.record(actor, "erp.profile.inbound_token_set", profile, {}, tenant_id=profile.tenant_id)
        transaction.on_commit(forget_credentials)
    profile.inbound_token_sha256 = keyring.token_hash(token)
    forget_credentials()


# ---------------------------------------------------------------- who a token is, remembered briefly
# Resolving a token (profile row, key rows, decrypting the keys) is most of an authenticated request's
# database work, so each process keeps the answer for ERP_INBOUND_AUTH_CACHE_SECONDS. Any change to
# profiles or keys bumps a generation in the shared cache, which every process compares on each request:
# a rotation or a disabled profile takes effect at once everywhere. (A bulk QuerySet.update() elsewhere
# sends no signal; such a change is picked up within the cache seconds.)
_GENERATION_KEY = "erp:inbound:credentials-generation"
_resolved: dict[str, tuple] = {}


def forget_credentials(*args, **kwargs) -> None:
    """Invalidate every process's remembered token resolutions (a signal receiver too)."""
    cache.set(_GENERATION_KEY, uuid.uuid4().hex, None)
    _resolved.clear()


def _generation() -> str:
    generation = cache.get(_GENERATION_KEY)
    if generation is None:  # a cleared or new cache: start a generation nothing remembered belongs to
        generation = uuid.uuid4().hex
        cache.add(_GENERATION_KEY, generation, None)
        generation = cache.get(_GENERATION_KEY) or generation
    return generation


for _model in (IntegrationProfile, ErpKey):
    post_save.connect(forget_credentials, sender=_model, dispatch_uid=f"erp.inbound.forget.save.{_model.__name__}")
    post_delete.connect(forget_credentials, sender=_model, dispatch_uid=f"erp.inbound.forget.del.{_model.__name__}")


def _resolve(token: str | None):
    """(caller, verification keys) for a bearer token, or (None, []); remembered per process for a few seconds."""
    if not token:
        return None, []
    digest = keyring.token_hash(token)
    generation, now = _generation(), time.monotonic()
    hit = _resolved.get(digest)
    if hit is not None and hit[0] > now and hit[1] == generation:
        return hit[2], hit[3]
    caller = _profile_for_token(token)
    if caller is None:
        return None, []  # unknown tokens are not remembered: a stranger cannot fill the memory
    keys = keyring.verification_keys(caller.profile)
    if len(_resolved) > 1000:
        _resolved.clear()
    _resolved[digest] = (now + settings.ERP_INBOUND_AUTH_CACHE_SECONDS, generation, caller, keys)
    return caller, keys


def _bearer(authorization: str) -> str | None:
    scheme, _sep, token = (authorization or "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def _profile_for_token(token: str | None) -> Caller | None:
    """The caller a token names, or None. Lookup by the token's sha256, compared in constant time."""
    if not token:
        return None
    digest = keyring.token_hash(token)
    profile = IntegrationProfile.objects.filter(inbound_token_sha256=digest).select_related("tenant").first()
    if profile is not None and hmac.compare_digest(profile.inbound_token_sha256, digest):
        return Caller(profile)
    env_token = settings.ERP_BEARER_TOKEN
    if env_token and hmac.compare_digest(keyring.token_hash(env_token), digest):
        return Caller(IntegrationProfile.objects.filter(tenant__isnull=True).first())
    return None


def _allowlist(profile: IntegrationProfile | None) -> list[str]:
    own = (profile.ip_allowlist if profile is not None else "").replace(",", "\n").split()
    return own or list(settings.ERP_IP_ALLOWLIST)


def _any_allowlist() -> list[str]:
    """Every network some profile (or ERP_IP_ALLOWLIST) admits: the IP test for a caller whose token named
    no profile, so a stranger from an unlisted address gets 403 whatever token it sends."""
    cidrs = list(settings.ERP_IP_ALLOWLIST)
    for text in IntegrationProfile.objects.exclude(ip_allowlist="").values_list("ip_allowlist", flat=True):
        cidrs.extend(text.replace(",", "\n").split())
    return cidrs


_UNIX_SECONDS = re.compile(r"[0-9]{1,12}")


def _signed_content(body: bytes, timestamp: str | None) -> bytes:
    if timestamp is None:
        return body
    if not _UNIX_SECONDS.fullmatch(timestamp):
        raise InboundRefused(
            401, "invalid-signature", "Invalid signature", "X-Signature-Timestamp is not a Unix time in seconds."
        )
    return signing.timestamped_content(timestamp, body)


def _check_window(timestamp: str) -> None:
    """A signed timestamp outside ERP_INBOUND_SIGNATURE_TOLERANCE_SECONDS of now: a captured message re-sent."""
    tolerance = settings.ERP_INBOUND_SIGNATURE_TOLERANCE_SECONDS
    if abs(time.time() - int(timestamp)) > tolerance:
        raise InboundRefused(
            401,
            "signature-expired",
            "Signature timestamp outside the tolerance",
            "X-Signature-Timestamp is too far from the server's time; sign the message again.",
            tolerance_seconds=tolerance,
        )


def authenticate(
    *, client_ip: str, authorization: str, body: bytes, signature: str | None, timestamp: str | None = None
) -> Caller:
    """IP, then token, then signature (and its timestamp); raises InboundRefused (403, 401, 401) or returns
    the caller.

    An empty allowlist admits nobody: inbound calls move jobs, so the ERP's addresses must be named.
    With `timestamp` (X-Signature-Timestamp) the signature covers `<timestamp>.<body>` and the timestamp
    must be within ERP_INBOUND_SIGNATURE_TOLERANCE_SECONDS of now; checked after the signature verifies,
    so only the key's holder learns the window.
    """
    caller, keys = _resolve(_bearer(authorization))
    cidrs = _allowlist(caller.profile) if caller is not None else _any_allowlist()
    if not cidrs or not address_in(client_ip, cidrs):
        raise InboundRefused(403, "ip-not-allowed", "Address not allowed", "This address may not call the ERP API.")
    if caller is None or (caller.profile is not None and not caller.profile.enabled):
        raise InboundRefused(401, "authentication-failed", "Authentication failed", "Invalid bearer token.")
    required = caller.profile is not None and caller.profile.signature_required
    if signature is not None or required or timestamp is not None:
        if not signature:
            raise InboundRefused(401, "invalid-signature", "Invalid signature", "X-Signature is required.")
        content = _signed_content(body, timestamp)
        # Every key is tried (no early exit), so the time taken does not say which key came close.
        matches = [signing.x_signature_matches(secret, content, signature) for secret, _fp in keys]
        if not any(matches):
            raise InboundRefused(401, "invalid-signature", "Invalid signature", "X-Signature does not verify.")
        if timestamp is not None:
            _check_window(timestamp)
    return caller


def _scoped(caller: Caller, raw: str) -> str:
    scoped = f"{caller.ident}:{raw}"
    return scoped if len(scoped) <= 128 else f"{caller.ident}:sha256:{hashlib.sha256(raw.encode()).hexdigest()}"


def _dedupe_keys(caller: Caller, idempotency_key: str | None, request_id: str | None) -> list[str]:
    """The keys a message is known by, per profile: its Idempotency-Key and its X-Request-Id. The first one
    is stored as the row's idempotency_key (a message with neither gets a unique one, so it is never
    taken for another)."""
    keys = [_scoped(caller, f"key:{idempotency_key}")] if idempotency_key else []
    if request_id:
        keys.append(_scoped(caller, f"rid:{request_id}"))
    return keys or [_scoped(caller, f"uuid:{uuid.uuid4()}")]


def _earlier(keys: list[str]) -> ErpSync | None:
    # One lookup on the (direction, idempotency_key) unique index; the first stored key is the strongest.
    rows = {r.idempotency_key: r for r in ErpSync.objects.filter(direction=Direction.INBOUND, idempotency_key__in=keys)}
    return next((rows[k] for k in keys if k in rows), None)


_SLUGS = {404: "not-found", 409: "illegal-transition", 422: "invalid-progress"}


def replay_of(row: ErpSync, *, body_sha256: str | None = None) -> Outcome:
    """The first answer to a message again: 200 {"ok": true}, or the refusal it got.

    With `body_sha256` (the message came with an Idempotency-Key), a stored message with another body under
    that key is 422 idempotency-key-reused, as on every other endpoint (apps/core/idempotency.py)."""
    if body_sha256 is not None and row.body_sha256 != body_sha256:
        raise InboundRefused(
            422,
            "idempotency-key-reused",
            "Idempotency-Key reused with a different request",
            "This key was first used for another body; use a new key.",
        )
    if row.response_code == 200:
        return Outcome(200, sync=row, replayed=True)
    refusal = InboundRefused(row.response_code, _SLUGS.get(row.response_code, "error"), "Refused", row.error_message)
    refusal.replayed_sync = row
    raise refusal


def _find_and_lock_job(caller: Caller, job_id: str) -> Job | None:
    """The job named by the ERP, row-locked, with `last_ext_ts`: the `ext_ts` of the last message applied to
    it. Found by its ERP id (external_id) in the profile's tenant, else by the portal's public id.
    Call inside the transaction that applies the message."""
    tenant_id = caller.profile.tenant_id if caller.profile is not None else None
    matches = _locked_jobs("external_id", job_id, tenant_id, limit=2)
    if not matches:
        try:
            public_id = uuid.UUID(job_id)
        except ValueError:
            return None
        matches = _locked_jobs("public_id", public_id, tenant_id, limit=1)
    # The default profile spans tenants: an ERP id two tenants share names no single job.
    return matches[0] if len(matches) == 1 else None


def _locked_jobs(column: str, value, tenant_id: int | None, *, limit: int) -> list[Job]:
    # Hand-written SQL read by hand: compiling this query through the ORM, or mapping it through
    # Job.objects.raw(), costs more than the rest of the lookup (docs/benchmarks.md "ERP inbound progress").
    job, sync = Job._meta, ErpSync._meta
    columns = ", ".join(f"j.{connection.ops.quote_name(f.column)}" for f in job.concrete_fields)
    # Names come from the models' _meta and the two columns above; every value is a parameter.
    sql = (
        f"SELECT {columns}, (SELECT s.ext_ts FROM {sync.db_table} s WHERE s.job_id = j.id AND s.direction = %s"  # noqa: S608
        f" AND s.applied AND s.ext_ts IS NOT NULL ORDER BY s.ext_ts DESC LIMIT 1)"
        f" FROM {job.db_table} j WHERE j.{column} = %s"
    )
    params = [Direction.INBOUND.value, job.get_field(column).get_db_prep_value(value, connection)]
    if tenant_id is not None:
        sql += " AND j.tenant_id = %s"
        params.append(tenant_id)
    sql += f" LIMIT {int(limit)}"
    if connection.features.has_select_for_update_of:
        sql += " FOR UPDATE OF j"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    attnames, converters = _row_converters()
    jobs = []
    for row in rows:
        values = [_converted(value, convert) for value, convert in zip(row, converters, strict=True)]
        found = Job.from_db(connection.alias, attnames, values[:-1])
        found.last_ext_ts = values[-1]
        jobs.append(found)
    return jobs


_converters_by_vendor: dict[str, tuple] = {}


def _row_converters() -> tuple[list[str], list]:
    """Job's attribute names, and per column of _locked_jobs' row the database's value converters (the
    ones a queryset applies: SQLite hands back timestamps as text, UUIDs as hex), built once per vendor."""
    if connection.vendor not in _converters_by_vendor:
        columns = [f.get_col(Job._meta.db_table) for f in Job._meta.concrete_fields]
        columns.append(ErpSync._meta.get_field("ext_ts").get_col(ErpSync._meta.db_table))
        _converters_by_vendor[connection.vendor] = (
            [f.attname for f in Job._meta.concrete_fields],
            [(col, [*connection.ops.get_db_converters(col), *col.get_db_converters(connection)]) for col in columns],
        )
    return _converters_by_vendor[connection.vendor]


def _converted(value, convert):
    column, functions = convert
    for function in functions:
        value = function(value, column, connection)
    return value


def apply_progress(
    caller: Caller, data: dict, *, raw_body: bytes, request_id: str | None, idempotency_key: str | None
) -> Outcome:
    """Apply one validated message (`data`: job_id, status, progress, message?, ext_ts?) exactly once.

    The message's inbound row is written under its unique key in the transaction of its effects, so a
    repeat (or a concurrent copy) fails on the unique index, rolls back, and gets the first answer: a new
    message costs no lookup beforehand.
    Raises InboundRefused for 404 (unknown job), 409 (illegal transition) or 422 (invalid progress);
    those outcomes are recorded as failed inbound rows, so a repeat gets the same answer.
    """
    keys = _dedupe_keys(caller, idempotency_key, request_id)
    body_sha256 = hashlib.sha256(raw_body).hexdigest()

    def first_answer(earlier: ErpSync) -> Outcome:
        same_key = idempotency_key is not None and earlier.idempotency_key == keys[0]
        return replay_of(earlier, body_sha256=body_sha256 if same_key else None)

    if len(keys) > 1:
        # Only the first key is stored; a message sent before with just the second one is found here.
        earlier = _earlier(keys)
        if earlier is not None:
            return first_answer(earlier)
    ext_ts = data.get("ext_ts")
    row = ErpSync(
        direction=Direction.INBOUND,
        profile=caller.profile,
        external_id=str(data["job_id"])[:64],
        request_id=(request_id or "")[:64],
        idempotency_key=keys[0],
        body_sha256=body_sha256,
        request_body=data_for_json(data),
        body=raw_body.decode("utf-8", errors="replace"),
        ext_ts=ext_ts,
        attempt_count=1,
    )
    try:
        with transaction.atomic():
            locked = _find_and_lock_job(caller, str(data["job_id"]))
            if locked is None:
                raise InboundRefused(404, "not-found", "Not found", "No such job.")
            last = locked.last_ext_ts
            correction = data.get("correction", False)
            # Older than the newest applied message, or without a time once messages came with one: it cannot
            # be ordered after them (a captured message re-sent), so it is recorded but not applied.
            stale = not correction and last is not None and (ext_ts is None or ext_ts < last)
            if not stale and not correction and _regresses(locked, data):
                raise InboundRefused(
                    422,
                    "invalid-progress",
                    "Invalid progress",
                    "Progress does not go back within one status; send correction: true to correct it.",
                )
            unchanged = locked.status == data["status"] and locked.progress == data["progress"]
            if not stale and not unchanged:
                locked = job_services.change_locked_status(
                    locked,
                    data["status"],
                    progress=data["progress"],
                    actor=None,
                    source=StatusSource.ERP,
                    reason=(data.get("message") or "")[:500],
                )
            row.job, row.tenant_id = locked, locked.tenant_id
            row.status, row.response_code, row.applied = SyncStatus.ACKED, 200, not stale
            row.acked_at = row.last_attempt_at = timezone.now()
            row.save()
            audit.record(
                (ActorType.ERP, caller.ident),
                AUDIT_ACTION,
                locked,
                {
                    "sync_id": row.pk,
                    "status": data["status"],
                    "progress": data["progress"],
                    "message": (data.get("message") or "")[:500],
                    "ext_ts": ext_ts.isoformat() if ext_ts else None,
                    "applied": not stale,
                    "stale_behind": last.isoformat() if stale else None,
                    "correction": correction,
                },
            )
        return Outcome(200, sync=row)
    except IntegrityError as exc:
        # A repeat, or a copy applied concurrently: everything above rolled back; answer as the first did.
        earlier = _earlier(keys)
        if earlier is None:
            raise exc from None
        return first_answer(earlier)
    except (IllegalTransition, InvalidProgress, InboundRefused) as exc:
        refusal = _refusal(exc)
        if not _record_refused(row, refusal):
            earlier = _earlier(keys)  # a repeat of an earlier message: its first answer, not this one
            if earlier is not None:
                return first_answer(earlier)
        raise refusal from exc


def _regresses(job: Job, data: dict) -> bool:
    """Progress lower than the job's for the status it already has: a replayed or reordered message."""
    return job.status == data["status"] and data["progress"] < (job.progress or 0)


def _refusal(exc) -> InboundRefused:
    if isinstance(exc, InboundRefused):
        return exc
    if isinstance(exc, IllegalTransition):
        return InboundRefused(
            409,
            "illegal-transition",
            "Illegal status transition",
            str(exc.message),
            from_status=exc.from_status,
            to_status=exc.to_status,
            allowed=exc.allowed,
        )
    return InboundRefused(422, "invalid-progress", "Invalid progress", str(exc.message))


def _record_refused(row: ErpSync, refusal: InboundRefused) -> bool:
    """Keep a refused message (its own transaction, the change rolled back), so a repeat gets the same answer.
    False when the message's key is taken: it is a repeat (or a concurrent copy recorded it first)."""
    row.pk = None
    row.status, row.response_code, row.applied = SyncStatus.FAILED, refusal.status_code, False
    row.error_message = refusal.detail[:2000]
    try:
        with transaction.atomic():
            row.save()
    except IntegrityError:
        return False
    return True


def data_for_json(data: dict) -> dict:
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in data.items()}
