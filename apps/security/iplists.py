"""The IP allow/block lists: one cache read per request (the lists' version); the lists themselves are read
from the database and compiled to integers once per process per change (invalidate() sets a new version).

Scopes: `admin` (the staff surfaces of middleware.STAFF_SURFACES), `erp_inbound` (/api/v1/erp/inbound/),
`api` (the rest of /api/), and `all` (every request, those three included). Health probes, /metrics (its
own INTERNAL_* rules) and the public API docs and schema are never filtered.

IP_FILTER_MODE=blacklist: a request is refused when a live block entry of its scope (or `all`) matches and
no live allow entry does. whitelist: also refused when no allow entry matches, for a scope that has allow
entries at all (a scope with none is not restricted, so an empty list cannot lock everybody out).
ADMIN_IP_ALLOWLIST stays a fixed allow list of the admin scope (AdminIPAllowlistMiddleware).
An entry stops matching the moment its `expires_at` passes (it is compared on every check); the beat task
`purge_expired` only deletes the rows later.
"""

import ipaddress
import time
import uuid
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from .events import record_event
from .models import EventType, IPListEntry, ListType, Scope, Severity

VERSION_KEY = "security:iplists:version"
# Per process: the lists as integers per scope, for the version in the cache (and at most
# IP_LISTS_CACHE_SECONDS old, so a row changed behind the app's back is seen within that time).
_local: dict = {"version": None, "loaded_at": 0.0, "scopes": {}}


def _load_rows():
    rows = IPListEntry.live().values_list("network", "list_type", "scope", "expires_at")
    compiled: dict[str, list] = {}
    for net, list_type, scope, expires in rows:
        network = ipaddress.ip_network(net)
        entry = (
            network.version,
            int(network.network_address),
            int(network.netmask),
            list_type == ListType.ALLOW,
            expires.timestamp() if expires else None,
        )
        compiled.setdefault(scope, []).append(entry)
    return compiled


def current_version() -> str:
    """The lists' version: the one cache read of a request."""
    version = cache.get(VERSION_KEY)
    if version is None:
        version = uuid.uuid4().hex
        if not cache.add(VERSION_KEY, version, None):
            version = cache.get(VERSION_KEY) or version
    return version


def compiled_lists(version: str | None = None) -> dict:
    """{scope: [(ip version, network int, mask int, is_allow, expires_ts), ...]} for the current version."""
    version = version or current_version()
    now = time.monotonic()
    if _local["version"] != version or now - _local["loaded_at"] > settings.IP_LISTS_CACHE_SECONDS:
        _local.update(version=version, loaded_at=now, scopes=_load_rows())
    return _local["scopes"]


def invalidate() -> None:
    """A new version: every process reloads the lists on its next request (now and again after commit)."""
    cache.set(VERSION_KEY, uuid.uuid4().hex, None)
    transaction.on_commit(lambda: cache.set(VERSION_KEY, uuid.uuid4().hex, None))


def scope_of(path: str) -> str | None:
    """The scope a request path belongs to (None: never filtered)."""
    from .middleware import staff_surface

    if path.startswith(("/health/", "/metrics", "/static/", "/favicon.ico", "/api/docs/", "/api/schema/")):
        return None
    if staff_surface(path) is not None:
        return Scope.ADMIN
    if path.startswith("/api/v1/erp/inbound/"):
        return Scope.ERP_INBOUND
    if path.startswith("/api/"):
        return Scope.API
    return Scope.ALL


def decide(ip: str, scope: str, lists: dict | None = None, *, now=None) -> tuple[bool, bool]:
    """(allowed, explicitly allowed) for `ip` on `scope` by the lists and IP_FILTER_MODE."""
    lists = lists if lists is not None else compiled_lists()
    if not lists:
        return True, False
    entries = lists.get(scope, []) + (lists.get(Scope.ALL, []) if scope != Scope.ALL else [])
    if not entries:
        return True, False
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return settings.IP_FILTER_MODE != "whitelist", False
    version, value = addr.version, int(addr)
    now_ts = (now or timezone.now()).timestamp()
    blocked = has_allow = False
    for entry_version, network, mask, is_allow, expires in entries:
        if expires is not None and expires <= now_ts:
            continue
        if is_allow:
            has_allow = True
        if entry_version == version and value & mask == network:
            if is_allow:
                return True, True
            blocked = True
    if blocked:
        return False, False
    if settings.IP_FILTER_MODE == "whitelist" and has_allow:
        return False, False
    return True, False


# ---------------------------------------------------------------- writes
def add_entry(
    *,
    network: str,
    list_type: str,
    scope: str = Scope.ALL,
    reason: str = "",
    expires_hours=None,
    actor=None,
    automatic=False,
) -> IPListEntry:
    """Add (or renew) an entry; audited as a security event. `network` must already be validated."""
    expires_at = timezone.now() + timedelta(hours=expires_hours) if expires_hours else None
    with transaction.atomic():
        entry, created = IPListEntry.objects.update_or_create(
            network=str(ipaddress.ip_network(network, strict=False)),
            list_type=list_type,
            scope=scope,
            defaults={"reason": reason, "expires_at": expires_at, "added_by": actor, "automatic": automatic},
        )
        record_event(
            EventType.IP_AUTO_BLOCKED if automatic else EventType.IP_LIST_CHANGED,
            Severity.HIGH if automatic else Severity.MEDIUM,
            actor=actor,
            change="added" if created else "renewed",
            network=entry.network,
            list_type=list_type,
            scope=scope,
            reason=reason,
            expires_at=expires_at.isoformat() if expires_at else None,
        )
        invalidate()
    return entry


def remove_entries(*, network: str, list_type: str | None = None, actor=None) -> int:
    rows = IPListEntry.objects.filter(network=str(ipaddress.ip_network(network, strict=False)))
    if list_type:
        rows = rows.filter(list_type=list_type)
    with transaction.atomic():
        removed = [(r.network, r.list_type, r.scope) for r in rows]
        rows.delete()
        if removed:
            record_event(
                EventType.IP_LIST_CHANGED,
                Severity.MEDIUM,
                actor=actor,
                change="removed",
                entries=[{"network": n, "list_type": lt, "scope": s} for n, lt, s in removed],
            )
        invalidate()
    return len(removed)


def auto_block(ip: str, *, lockouts: int) -> IPListEntry | None:
    """After LOCKOUT_IP_BLOCK_AFTER lockouts from `ip` in 24 h: block it for IP_AUTO_BLOCK_HOURS, unless an
    allow entry names it (a known office or NAT address is protected from being blocked this way)."""
    _allowed, explicit = decide(ip, Scope.ALL, _load_rows())
    if explicit:
        return None
    reason = f"{lockouts} sign-in lockouts within 24 hours"
    return add_entry(
        network=ip,
        list_type=ListType.BLOCK,
        scope=Scope.ALL,
        reason=reason,
        expires_hours=settings.IP_AUTO_BLOCK_HOURS,
        automatic=True,
    )


def purge_expired(now=None) -> int:
    count, _ = IPListEntry.objects.filter(expires_at__lte=now or timezone.now()).delete()
    if count:
        invalidate()
    return count
