"""The client's address: REMOTE_ADDR, or the right-most untrusted X-Forwarded-For hop behind trusted proxies."""

import ipaddress
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


@lru_cache(maxsize=8)
def _networks(cidrs: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    try:
        return tuple(ipaddress.ip_network(c.strip(), strict=False) for c in cidrs if c.strip())
    except ValueError as exc:
        raise ImproperlyConfigured(f"Bad CIDR in address list {cidrs!r}: {exc}") from None


def parse_networks(cidrs) -> tuple:
    """Parse a list of CIDR strings once; a bad entry raises ImproperlyConfigured."""
    return _networks(tuple(cidrs))


def _address(value: str):
    try:
        return ipaddress.ip_address(value.strip())
    except ValueError:
        return None


def address_in(ip: str, cidrs) -> bool:
    """Whether `ip` falls inside any network of `cidrs`; an unparsable ip is never inside."""
    addr = _address(ip)
    return addr is not None and any(addr in net for net in parse_networks(cidrs))


def client_ip(meta: dict) -> str:
    """Resolve the client IP from a WSGI environ/`request.META`.

    X-Forwarded-For is believed only when the direct peer is a trusted proxy; then the hops are read
    right to left and the first one that is not itself a trusted proxy is the client.
    """
    peer = meta.get("REMOTE_ADDR", "") or ""
    trusted = parse_networks(settings.TRUSTED_PROXIES)
    if not trusted or not address_in(peer, settings.TRUSTED_PROXIES):
        return peer
    hops = [h.strip() for h in meta.get("HTTP_X_FORWARDED_FOR", "").split(",") if h.strip()]
    for hop in reversed(hops):
        if _address(hop) is None:
            # A garbled hop cannot be trusted or attributed; stop at the last good address.
            return peer
        if not address_in(hop, settings.TRUSTED_PROXIES):
            return hop
        peer = hop
    return peer
