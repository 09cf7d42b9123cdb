"""The fixed-window counter behind the per-profile throttle, on the cache each deployment uses."""

import uuid

import pytest
from django.core.cache import cache

from apps.core.throttling import count_in_window


def _counts_and_expires(key):
    assert [count_in_window(cache, key, 30) for _ in range(3)] == [1, 2, 3]
    assert cache.get(key) == 3, "the counter is an ordinary cache value (readable, deletable)"


@pytest.mark.redis
def test_on_redis_the_counter_counts_atomically_and_expires_with_its_window():
    from django_redis import get_redis_connection

    key = f"test-window-{uuid.uuid4().hex}"
    _counts_and_expires(key)
    ttl = get_redis_connection("default").ttl(cache.make_key(key))
    assert 0 < ttl <= 30, "every increment keeps the window's expiry, so no counter outlives it"


def test_on_the_default_cache_the_counter_counts_too(settings):
    key = f"test-window-{uuid.uuid4().hex}"
    _counts_and_expires(key)
