"""A circuit breaker whose state every process shares through the cache (Redis in production).

Written here because pybreaker keeps its state per process or in Redis only, and the zero-setup run
has several processes and no Redis; Django's cache is shared by all of them in both set-ups.

When the cache is unreachable (Redis down) a breaker keeps its state in this process instead, so callers
are neither blocked nor failed by the cache: each process then opens and probes on its own, and the shared
state is used again as soon as the cache answers (issue 13's drill: tests/erp/test_drills.py).
"""

import logging
import threading
import time
from dataclasses import dataclass

from django.core.cache import cache
from django.dispatch import Signal

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"

# Sent with `name` when a breaker closes again after having been open (an outage ended).
breaker_closed = Signal()
# Sent with `name` and `failures` when a closed breaker opens (an outage began; a failed probe sends nothing).
breaker_opened = Signal()

# Every breaker this process has constructed, by name (issue 15: GET /api/enterprise/circuit-breakers), and
# callables that list breakers another process may have made (an ERP profile's, before this one called out).
_known: dict[str, "CircuitBreaker"] = {}
_sources: list = []

logger = logging.getLogger(__name__)
# The cache's stand-in while it is unreachable: {key: state} of this process, and whether that was logged.
_local: dict = {}
_local_lock = threading.Lock()
_cache_down = {"logged": False}


def _cache_failed(exc) -> None:
    if not _cache_down["logged"]:
        _cache_down["logged"] = True
        logger.warning(
            "cache unreachable (%s): circuit breakers keep their state per process meanwhile",
            type(exc).__name__,
            extra={"alert": "breaker.cache_unreachable"},
        )


def _cache_ok() -> None:
    if _cache_down["logged"]:
        _cache_down["logged"] = False
        logger.warning("cache reachable again: circuit breakers share their state again")


def register_source(source) -> None:
    """`source()` returns {name: BreakerState} of breakers that should be listed even if never built here."""
    if source not in _sources:
        _sources.append(source)


def all_states() -> dict[str, "BreakerState"]:
    """The state of every breaker known here or to a registered source (a failing source lists nothing)."""
    states = {name: breaker.state() for name, breaker in list(_known.items())}
    for source in _sources:
        try:
            states.update(source())
        except Exception:  # noqa: S112 - one app's broken listing must not hide every other breaker
            continue
    return states


@dataclass(frozen=True)
class BreakerState:
    name: str
    state: str
    consecutive_failures: int
    opened_at: float | None
    retry_at: float | None

    def as_dict(self) -> dict:
        return {
            "state": self.state,
            "consecutive_failures": self.consecutive_failures,
            "opened_at": self.opened_at,
            "retry_at": self.retry_at,
        }


class CircuitBreaker:
    """Opens after `failure_threshold` consecutive failures; after `cooldown` seconds one caller probes.

    allow() says whether a call may go out now; record_success()/record_failure() report its outcome.
    While open, callers are refused without calling out, so they need not spend their own retries.
    """

    def __init__(self, name: str, *, failure_threshold: int, cooldown: float):
        self.name = name
        self.failure_threshold = failure_threshold
        self.cooldown = cooldown
        self._key = f"breaker:{name}"
        self._opened_key = f"{self._key}:opened"  # who announces an opening (_claim_transition)
        _known[name] = self

    def _get(self) -> dict:
        try:
            data = cache.get(self._key)
        except Exception as exc:  # the cache is down: this process's own state, never an error for the caller
            _cache_failed(exc)
            data = _local.get(self._key)
        else:
            _cache_ok()
        return dict(data) if data else {"failures": 0, "opened_at": None, "retry_at": None}

    def _set(self, data: dict) -> None:
        try:
            cache.set(self._key, data, timeout=None)
        except Exception as exc:
            _cache_failed(exc)
            _local[self._key] = dict(data)

    def _add_probe(self, key: str) -> bool:
        try:
            return cache.add(key, 1, timeout=max(1, int(self.cooldown)))
        except Exception as exc:  # one probe per process while the cache is down
            _cache_failed(exc)
            with _local_lock:
                if key in _local:
                    return False
                _local[key] = 1
                return True

    def _claim_transition(self, opened: bool) -> bool:
        """True for exactly one caller per opening and per closing: workers that fail (or recover) at the same
        moment all see the threshold crossed, and each would otherwise announce the same outage."""
        marker = self._opened_key
        try:
            return bool(cache.add(marker, 1, timeout=None) if opened else cache.delete(marker))
        except Exception as exc:  # the cache is down: one announcement per process, never none
            _cache_failed(exc)
            with _local_lock:
                if not opened:
                    _local.pop(marker, None)
                    return True
                if marker in _local:
                    return False
                _local[marker] = 1
                return True

    def state(self) -> BreakerState:
        data = self._get()
        if data["opened_at"] is None:
            state = CLOSED
        elif time.time() >= data["retry_at"]:
            state = HALF_OPEN
        else:
            state = OPEN
        return BreakerState(self.name, state, data["failures"], data["opened_at"], data["retry_at"])

    def allow(self) -> bool:
        """True while closed; while open, True for the one caller that wins the probe after the cool-down."""
        data = self._get()
        if data["opened_at"] is None:
            return True
        if time.time() < data["retry_at"]:
            return False
        # Half-open: cache.add is atomic in Redis, so exactly one process gets to probe per cool-down.
        return self._add_probe(f"{self._key}:probe:{data['retry_at']}")

    def seconds_until_retry(self) -> float:
        data = self._get()
        return max(0.0, data["retry_at"] - time.time()) if data["retry_at"] else 0.0

    def record_success(self) -> None:
        data = self._get()
        was_open = data["opened_at"] is not None
        if was_open or data["failures"]:
            self._set({"failures": 0, "opened_at": None, "retry_at": None})
        if was_open and self._claim_transition(opened=False):
            breaker_closed.send(sender=type(self), name=self.name)

    def record_failure(self) -> None:
        data = self._get()
        data["failures"] += 1
        now = time.time()
        opening = data["opened_at"] is None and data["failures"] >= self.failure_threshold
        if data["opened_at"] is not None or opening:
            # Opening, or a failed probe: wait a full cool-down again.
            data["opened_at"] = data["opened_at"] or now
            data["retry_at"] = now + self.cooldown
        self._set(data)
        if opening and self._claim_transition(opened=True):
            breaker_opened.send(sender=type(self), name=self.name, failures=data["failures"])

    def reset(self) -> None:
        _local.pop(self._key, None)
        _local.pop(self._opened_key, None)
        try:
            cache.delete_many([self._key, self._opened_key])
        except Exception as exc:
            _cache_failed(exc)
