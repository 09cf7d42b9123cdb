"""The shared circuit breaker announces each outage once, however many workers see it begin or end."""

import pytest

from apps.core.circuit_breaker import CircuitBreaker, breaker_closed, breaker_opened
from tests.erp.conftest import free_port


@pytest.fixture
def announcements():
    seen = []

    def opened(sender, name, **kwargs):
        seen.append(("opened", name))

    def closed(sender, name, **kwargs):
        seen.append(("closed", name))

    breaker_opened.connect(opened, dispatch_uid="test.opened")
    breaker_closed.connect(closed, dispatch_uid="test.closed")
    yield seen
    breaker_opened.disconnect(dispatch_uid="test.opened")
    breaker_closed.disconnect(dispatch_uid="test.closed")


def _worker(name):
    return CircuitBreaker(name, failure_threshold=3, cooldown=60)


def test_two_workers_crossing_the_threshold_together_announce_one_opening_and_one_closing(announcements):
    first, second = _worker("test:shared"), _worker("test:shared")
    first.reset()
    first.record_failure()
    first.record_failure()
    # Both workers read the state (two failures) before either writes its third: both see the threshold crossed.
    stale = first._get()
    first._get = second._get = lambda: dict(stale)
    first.record_failure()
    second.record_failure()
    assert announcements == [("opened", "test:shared")]
    del first._get, second._get
    assert first.state().state == "open"

    stale = first._get()
    first._get = second._get = lambda: dict(stale)
    first.record_success()
    second.record_success()
    assert announcements == [("opened", "test:shared"), ("closed", "test:shared")]
    del first._get, second._get

    # The next outage is announced again.
    for _ in range(3):
        second.record_failure()
    assert announcements[-1] == ("opened", "test:shared") and len(announcements) == 3
    first.reset()


def test_without_the_cache_each_process_still_announces(announcements, settings):
    from django.core.cache import cache

    down = f"redis://127.0.0.1:{free_port()}/1"  # nothing listens there
    settings.CACHES = {n: {**c, "BACKEND": "django_redis.cache.RedisCache", "LOCATION": down} for n, c in
                       settings.CACHES.items()}  # fmt: skip
    with pytest.raises(Exception):  # the cache really is unreachable
        cache.get("probe")
    breaker = _worker("test:cacheless")
    try:
        for _ in range(4):
            breaker.record_failure()
        assert announcements == [("opened", "test:cacheless")]
        breaker.record_success()
        assert announcements[-1] == ("closed", "test:cacheless")
    finally:
        breaker.reset()
