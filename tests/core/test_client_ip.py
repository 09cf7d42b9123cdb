"""The client's address: X-Forwarded-For is believed only from trusted proxies, read right to left."""

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from apps.core.client_ip import client_ip

PROXIES = ["10.0.0.0/8", "fd00::/8"]


def meta(remote_addr, forwarded_for=None):
    values = {"REMOTE_ADDR": remote_addr}
    if forwarded_for is not None:
        values["HTTP_X_FORWARDED_FOR"] = forwarded_for
    return values


@override_settings(TRUSTED_PROXIES=[])
def test_without_trusted_proxies_it_uses_remote_addr_and_ignores_x_forwarded_for():
    assert client_ip(meta("203.0.113.9", "198.51.100.1")) == "203.0.113.9"
    assert client_ip(meta("10.0.0.2", "198.51.100.1")) == "10.0.0.2"


@override_settings(TRUSTED_PROXIES=PROXIES)
def test_an_untrusted_peer_is_the_client_whatever_it_forwards():
    assert client_ip(meta("203.0.113.9", "198.51.100.1, 10.0.0.3")) == "203.0.113.9"


@override_settings(TRUSTED_PROXIES=PROXIES)
def test_behind_a_trusted_proxy_the_client_is_the_right_most_untrusted_hop():
    assert client_ip(meta("10.0.0.1", "198.51.100.7")) == "198.51.100.7"
    assert client_ip(meta("10.0.0.1", "198.51.100.7, 10.1.2.3, 10.0.0.9")) == "198.51.100.7"


@override_settings(TRUSTED_PROXIES=PROXIES)
def test_forged_leftmost_hops_are_ignored():
    # The client itself sent "X-Forwarded-For: 1.1.1.1, 8.8.8.8"; our proxy appended the real address.
    assert client_ip(meta("10.0.0.1", "1.1.1.1, 8.8.8.8, 198.51.100.7")) == "198.51.100.7"


@override_settings(TRUSTED_PROXIES=PROXIES)
def test_a_trusted_proxy_without_x_forwarded_for_is_itself_the_client():
    assert client_ip(meta("10.0.0.1")) == "10.0.0.1"
    assert client_ip(meta("10.0.0.1", " , ")) == "10.0.0.1"


@override_settings(TRUSTED_PROXIES=PROXIES)
def test_ipv6_peers_and_hops_are_handled():
    assert client_ip(meta("fd00::1", "2001:db8::7")) == "2001:db8::7"
    assert client_ip(meta("fd00::1", "2001:db8::dead, fd12::5")) == "2001:db8::dead"
    assert client_ip(meta("2001:db8::1", "198.51.100.7")) == "2001:db8::1"


@override_settings(TRUSTED_PROXIES=PROXIES)
def test_a_garbled_hop_stops_the_walk_at_the_last_good_address():
    # Nothing left of the garbage can be attributed: the forged 1.1.1.1 must not become the client.
    assert client_ip(meta("10.0.0.1", "1.1.1.1, not-an-ip, 10.0.0.5")) == "10.0.0.5"
    assert client_ip(meta("10.0.0.1", "1.1.1.1, 198.51.100.7:4431")) == "10.0.0.1"


@override_settings(TRUSTED_PROXIES=PROXIES)
def test_an_unparsable_remote_addr_is_never_trusted():
    assert client_ip(meta("garbage", "198.51.100.7")) == "garbage"


@override_settings(TRUSTED_PROXIES=["10.0.0.0/8", "not-a-network"])
def test_a_bad_trusted_proxy_entry_fails_loudly():
    with pytest.raises(ImproperlyConfigured):
        client_ip(meta("10.0.0.1", "198.51.100.7"))
