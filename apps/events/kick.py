"""Waking a relay after commit: at most one pending wake-up per topic, and never a slow commit when the broker is down.

A commit used to send one Celery task per event (and the ERP one more per message). Now a commit only
*wakes* a relay: `kick(task, key=...)` sends the task unless a wake-up for `key` is already pending (a
cache flag, `cache.add`), and the relay clears the flag each time it starts looking for work (`clear`),
so a commit that lands while the relay is busy is either seen by its next claim or sends a new wake-up.
The rows themselves are the queue; the beat sweeps (relay_outbox, erp deliver_due) are the safety net.

With the broker unreachable the publish fails fast (`retry=False`, the short broker connect timeout in
settings) and is logged once per outage; for ENQUEUE_BROKER_BACKOFF_SECONDS after a failure no publish
is tried at all, so `change_status` costs what it costs with a healthy broker and the sweep delivers.
"""

import logging
import threading
import time

from django.conf import settings
from django.core.cache import cache
from kombu.exceptions import OperationalError

# What a publish raises when the broker cannot be reached (kombu wraps most of them in OperationalError).
BROKER_ERRORS = (OperationalError, ConnectionError, TimeoutError, OSError)

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_state = {"broker_down_until": 0.0, "broker_logged": False, "cache_down_until": 0.0}


def _flag(key: str) -> str:
    return f"kick:{key}"


def _cache_call(method, *args):
    """A cache call that never raises and is skipped for a while after the cache failed once."""
    if time.monotonic() < _state["cache_down_until"]:
        return None
    try:
        return method(*args)
    except Exception:  # the cache is down: wake-ups are not coalesced meanwhile (more tasks, nothing lost)
        _state["cache_down_until"] = time.monotonic() + settings.ENQUEUE_BROKER_BACKOFF_SECONDS
        return None


def kick(task, *, key: str, args=(), countdown: float | None = None) -> bool:
    """Send `task` unless a wake-up for `key` is pending (countdown: a timed wake-up, never coalesced)."""
    if time.monotonic() < _state["broker_down_until"]:
        return False  # the broker failed moments ago: the sweep delivers
    if countdown is None and _cache_call(cache.add, _flag(key), 1, settings.ENQUEUE_KICK_TTL_SECONDS) is False:
        return False  # a wake-up is pending already; its relay will see this commit
    try:
        task.apply_async(args, countdown=countdown, retry=False)
    except BROKER_ERRORS as exc:  # broker unreachable: the rows stay due and the beat sweep hands them on
        with _lock:
            _state["broker_down_until"] = time.monotonic() + settings.ENQUEUE_BROKER_BACKOFF_SECONDS
            first = not _state["broker_logged"]
            _state["broker_logged"] = True
        if first:
            logger.warning(
                "broker unreachable (%s); commits no longer wake the relays, the sweep delivers",
                type(exc).__name__,
                extra={"alert": "broker.unreachable"},
            )
        if countdown is None:
            _cache_call(cache.delete, _flag(key))
        return False
    except Exception:  # not the broker (an eager task that raised, in tests): nothing is lost either
        logger.exception("wake-up %s failed; the sweep hands its rows on", key)
        if countdown is None:
            _cache_call(cache.delete, _flag(key))
        return False
    if _state["broker_logged"]:
        with _lock:
            _state["broker_logged"] = False
        logger.warning("broker reachable again; commits wake the relays")
    return True


def clear(key: str) -> None:
    """Called by a relay before it looks for work: the next commit sends a new wake-up."""
    _cache_call(cache.delete, _flag(key))


def reset() -> None:
    """Forget a remembered broker or cache failure (tests, drills)."""
    _state.update(broker_down_until=0.0, broker_logged=False, cache_down_until=0.0)
