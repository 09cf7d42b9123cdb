"""/healthz (the process answers) and /readyz (its dependencies answer): a small registry of readiness checks.

Each check returns a short detail (or raises); `critical` checks make /readyz answer 503, the others
(the SIEM backlog: a SIEM outage must not take the portal out of its load balancer) only report "warn".
Apps add checks with `register_check` in ready(); the SIEM one is registered only when apps.siem is installed.
"""

import time
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.http import JsonResponse
from django.views.decorators.cache import never_cache


@dataclass(frozen=True)
class Check:
    name: str
    run: object
    critical: bool = True


_checks: dict[str, Check] = {}


def register_check(name: str, run, *, critical: bool = True) -> None:
    """`run()` returns a short detail when the dependency is fine and raises when it is not."""
    _checks[name] = Check(name, run, critical)


def checks() -> list[Check]:
    return list(_checks.values())


def check_database() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return "ok"


def check_cache() -> str:
    from django.core.cache import cache

    key, value = "readyz:probe", uuid.uuid4().hex
    cache.set(key, value, timeout=10)
    if cache.get(key) != value:
        raise RuntimeError("the cache did not return what was just written")
    return "ok"


def check_broker() -> str:
    from config.celery import app

    with app.connection_for_write(connect_timeout=settings.OBSERVABILITY_READYZ_TIMEOUT_SECONDS) as conn:
        conn.ensure_connection(max_retries=1, timeout=settings.OBSERVABILITY_READYZ_TIMEOUT_SECONDS)
    return "ok"


def check_siem_backlog() -> str:
    from apps.siem.selectors import backlog_age_seconds

    age = backlog_age_seconds() or 0
    if age > settings.OBSERVABILITY_READYZ_SIEM_MAX_AGE_SECONDS:
        raise RuntimeError(f"oldest unshipped SIEM record is {age:.0f} s old")
    return f"{age:.0f} s"


def run_checks() -> tuple[bool, dict]:
    """(ready, {name: {status, ms[, detail]}}); ready is False when a critical check failed."""
    ready, results = True, {}
    for check in checks():
        started = time.perf_counter()
        try:
            detail, status = str(check.run()), "ok"
        except Exception as exc:  # a probe reports the failure instead of raising it
            detail, status = f"{type(exc).__name__}: {exc}"[:200], "fail" if check.critical else "warn"
            ready = ready and not check.critical
        results[check.name] = {
            "status": status,
            "ms": round((time.perf_counter() - started) * 1000, 1),
            "detail": detail,
        }
    return ready, results


@never_cache
def healthz(request):
    """Liveness: the process serves requests (no dependency is asked, so a database outage restarts nothing)."""
    return JsonResponse({"status": "ok"})


@never_cache
def readyz(request):
    """Readiness: 200 when every critical check passes, else 503; details only for INTERNAL_TOKEN/addresses."""
    from apps.core.internal_access import has_internal_access

    ready, results = run_checks()
    if not has_internal_access(request):
        results = {name: {"status": r["status"]} for name, r in results.items()}
    return JsonResponse({"status": "ok" if ready else "fail", "checks": results}, status=200 if ready else 503)
