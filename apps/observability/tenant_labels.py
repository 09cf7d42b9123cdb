"""The tenant a request is counted under: bounded, cheap (memoised per user), never a query per request.

A view that knows its tenant (an ERP profile's, say) may set `request.metrics_tenant = tenant`; otherwise the
authenticated user's only tenant, "multi" for a user of several (superusers included), "none" for anonymous
callers and users of none. Each process names at most OBSERVABILITY_TENANT_LABEL_LIMIT tenants; later ones are
counted as "other" in Prometheus (the stored statistics keep the tenant id, which is bounded by the table).
"""

import threading
import time

from django.conf import settings

from .constants import MULTI_TENANT, NO_TENANT, OTHER_TENANT

# user id -> (label, tenant id, expires at): a user's tenants change rarely; a minute's staleness is harmless.
_by_user: dict[int, tuple[str, int | None, float]] = {}
_labels: set[str] = set()
_lock = threading.Lock()
USER_MEMO_SECONDS = 60.0
USER_MEMO_SIZE = 10000


def reset() -> None:
    with _lock:
        _by_user.clear()
        _labels.clear()


def _bounded(slug: str) -> str:
    if slug in _labels:
        return slug
    with _lock:
        if len(_labels) >= settings.OBSERVABILITY_TENANT_LABEL_LIMIT:
            return OTHER_TENANT
        _labels.add(slug)
    return slug


def _of_user(user) -> tuple[str, int | None]:
    now = time.monotonic()
    memo = _by_user.get(user.pk)
    if memo and memo[2] > now:
        return memo[0], memo[1]
    from apps.accounts.selectors import sees_all_tenants, tenants_for

    if sees_all_tenants(user):
        found = (MULTI_TENANT, None)
    else:
        tenants = list(tenants_for(user).values_list("slug", "pk")[:2])
        found = (tenants[0][0], tenants[0][1]) if len(tenants) == 1 else (MULTI_TENANT if tenants else NO_TENANT, None)
    with _lock:
        if len(_by_user) >= USER_MEMO_SIZE:
            _by_user.clear()
        _by_user[user.pk] = (*found, now + USER_MEMO_SECONDS)
    return found


def tenant_of(request) -> tuple[str, int | None]:
    """(Prometheus label, tenant id or None) of a request that has been answered."""
    tenant = getattr(request, "metrics_tenant", None)
    if tenant is not None:
        return _bounded(tenant.slug), tenant.pk
    # request.user is set by AuthenticationMiddleware (or DRF's authentication, which sets it on the request too);
    # reading it here costs nothing more: the view has evaluated it already, or there is no session to load.
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return NO_TENANT, None
    label, tenant_id = _of_user(user)
    return (_bounded(label) if tenant_id else label), tenant_id
