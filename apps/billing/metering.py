"""API calls and inbound ERP messages counted by a middleware, summed in memory and flushed in batches.

Exports are not counted here: they are metered from the outbox (`report.export.requested`, subscribers.py), so
one started in the panel counts like one started through the API. An inbound ERP message is counted when its
view marks the request (`request.metered_usage = (tenant_id, metric, dimension)`): a newly applied or refused
message, not a replay answered from its first answer.

An API call is attributed to a tenant when the signed-in user works on exactly one tenant, or names one with
`?tenant=<slug>` that they may work on; other calls (superusers across tenants, anonymous) are not metered.
Each process keeps its own counter per (tenant, minute) and writes it as usage events every
BILLING_API_FLUSH_SECONDS or BILLING_API_FLUSH_CALLS calls (and at exit), with a key naming the process and
the flush, so a flush is stored once. A process killed between flushes loses at most that batch.
"""

import logging
import threading
import time
import uuid
from collections import Counter

from django.conf import settings
from django.utils import timezone

logger = logging.getLogger(__name__)
_lock = threading.Lock()
_counts: Counter = Counter()
_state = {"last": time.monotonic(), "seq": 0, "token": uuid.uuid4().hex[:12]}
_tenant_cache: dict = {}
_KEY_PREFIX = {"api_calls": "api", "erp_messages": "erp-in"}


def tenant_of(request) -> int | None:
    user = getattr(request, "user", None)
    if not (user and user.is_authenticated):
        return None
    slug = request.GET.get("tenant", "")
    cached = _tenant_cache.get((user.pk, slug))
    if cached and cached[1] > time.monotonic():
        return cached[0]
    from apps.accounts.selectors import tenants_for

    tenants = tenants_for(user)
    if slug:
        ids = list(tenants.filter(slug=slug).values_list("pk", flat=True)[:1])
    else:
        ids = list(tenants.values_list("pk", flat=True)[:2])
    tenant_id = ids[0] if len(ids) == 1 else None
    _tenant_cache[(user.pk, slug)] = (tenant_id, time.monotonic() + 60)
    return tenant_id


def flush_at_exit() -> None:
    flush(quiet=True)


def reset() -> None:
    """Forget the counts and the tenant cache (tests)."""
    with _lock:
        _counts.clear()
        _tenant_cache.clear()
        _state["last"] = time.monotonic()


def count_api_call(tenant_id: int) -> None:
    count_usage(tenant_id, "api_calls")


def count_usage(tenant_id: int, metric: str, dimension: str = "") -> None:
    """Count one unit of `metric` for the tenant in this process; written at the next flush."""
    bucket = timezone.now().replace(second=0, microsecond=0)
    with _lock:
        _counts[(tenant_id, metric, dimension, bucket)] += 1
        due = (
            sum(_counts.values()) >= settings.BILLING_API_FLUSH_CALLS
            or time.monotonic() - _state["last"] >= settings.BILLING_API_FLUSH_SECONDS
        )
    if due:
        flush()


def flush(*, quiet=False) -> int:
    """Write the counted calls as usage events; returns how many calls were written.

    Counts of a tenant that no longer exists are dropped (they cannot be billed). `quiet`: at exit, when
    logging may be closed already.
    """
    with _lock:
        counts = dict(_counts)
        _counts.clear()
        _state["last"] = time.monotonic()
        _state["seq"] += 1
        seq = _state["seq"]
    if not counts:
        return 0
    from apps.accounts.models import Tenant

    from . import services

    token = _state["token"]
    try:
        known = set(Tenant.objects.filter(pk__in={k[0] for k in counts}).values_list("pk", flat=True))
        counts = {k: n for k, n in counts.items() if k[0] in known}
        services.record_usage_batch(
            [
                {
                    "tenant_id": tenant_id,
                    "metric": metric,
                    "dimension": dimension,
                    "quantity": n,
                    "occurred_at": bucket,
                    "idempotency_key": f"{_KEY_PREFIX.get(metric, metric)}:{tenant_id}:{dimension}:"
                    f"{bucket:%Y%m%d%H%M}:{token}:{seq}",
                    "source": "api" if metric == "api_calls" else "erp.inbound",
                }
                for (tenant_id, metric, dimension, bucket), n in counts.items()
            ]
        )
    except Exception:  # the database is away (or the process is exiting): put the counts back for the next flush
        if quiet:
            return 0
        logger.warning(
            "usage metering: could not write %d API calls; kept for the next flush", sum(counts.values()), exc_info=True
        )
        with _lock:
            _counts.update(counts)
        return 0
    return sum(counts.values())


class UsageMeteringMiddleware:
    """Counts every answered /api/ request (below 500) of a user with one tenant as an API call, and what a view
    marked on the request (`request.metered_usage`), e.g. an inbound ERP message."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        try:
            marked = getattr(request, "metered_usage", None)
            if marked:
                count_usage(*marked)
            if request.path.startswith("/api/") and response.status_code < 500:
                tenant_id = tenant_of(request)
                if tenant_id:
                    count_api_call(tenant_id)
        except Exception:  # metering never breaks an answer
            logger.warning("usage metering failed for %s", request.path, exc_info=True)
        return response
