"""The outbound-URL guard: every URL an admin can type (alert webhooks, ERP base URLs) is called through it.

An address that is not public (loopback, link-local, private, shared, multicast, reserved, unspecified,
cloud metadata; IPv4 and IPv6, IPv4 inside IPv6 too) is refused unless the host is on the caller's
allowlist setting (`ALERT_WEBHOOK_ALLOWED_HOSTS`, `ERP_ALLOWED_HOSTS`). The check sits in the HTTP
connection's connect step: the name is resolved once, every address it gave is checked, and the socket
goes to a checked address, so a DNS answer that changes between check and connect (rebinding) cannot
reach anything else. Host header, TLS SNI and certificate verification keep the name. Redirects are never
followed and every call needs a timeout. A keep-alive connection is reused without any new lookup, an IP
literal is never looked up, and a name's addresses are remembered for `RESOLVE_CACHE_SECONDS`.

`check_url()` runs the same rules at save time (admin forms, model `clean()`); `session()` gives the
requests session that enforces them at send time; `failure_text()` turns a failure into the generic text
that may be stored and shown (never an internal address, port or socket error).
"""

import ipaddress
import os
import socket
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass

import requests
from django.utils.translation import gettext_lazy as _
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, LocationParseError, NameResolutionError, NewConnectionError
from urllib3.util import connection as urllib3_connection
from urllib3.util import parse_url

RESOLVE_CACHE_SECONDS = 30.0
_RESOLVE_CACHE_MAX = 1024
SCHEMES = ("http", "https")

# Instance metadata services answer on these without any credentials (AWS, GCP and Azure share the first).
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200", "192.0.0.192")
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

# Generic texts stored on failed deliveries and shown in the admin: they name the kind of failure only.
REFUSED_TEXT = "refused by outbound policy"
TIMEOUT_TEXT = "timeout"
CONNECTION_TEXT = "connection failed"


class OutboundRefused(Exception):
    """The policy refuses this URL or the address its host resolves to; `str()` is the admin-facing reason.

    Deliberately not an OSError: urllib3 would take it for a network error, retry and wrap it.
    """

    def __init__(self, reason: str, message):
        super().__init__(message)
        self.reason = reason
        self.message = message

    def __str__(self):
        return str(self.message)


# ---------------------------------------------------------------- allowlists


@dataclass(frozen=True)
class _Entry:
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None
    name: str | None
    port: int | None

    def admits_port(self, port: int) -> bool:
        return self.port is None or self.port == port


def _split_port(text: str) -> tuple[str, int | None]:
    if text.startswith("["):  # [v6] or [v6]:port
        host, bracket, rest = text[1:].partition("]")
        if not bracket:
            raise ValueError(text)
        if not rest:
            return host, None
        if not rest.startswith(":") or not rest[1:].isdigit():
            raise ValueError(text)
        return host, int(rest[1:])
    if text.count(":") == 1:  # host:port or v4:port (a bare v6 address has several colons)
        host, port = text.split(":")
        if not port.isdigit():
            raise ValueError(text)
        return host, int(port)
    return text, None


def parse_entry(text: str) -> _Entry:
    """One allowlist entry: an IP address or CIDR network, or a host name, either optionally with `:port`."""
    raw = text.strip().lower()
    if not raw:
        raise ValueError("empty entry")
    if "/" in raw:
        return _Entry(ipaddress.ip_network(raw, strict=False), None, None)
    host, port = _split_port(raw)
    if port is not None and not 0 < port < 65536:
        raise ValueError(text)
    try:
        return _Entry(ipaddress.ip_network(host), None, port)
    except ValueError:
        pass
    name = host.rstrip(".")
    if not name or any(c in name for c in "/@?#[] ") or _ambiguous_number(name):
        raise ValueError(text)
    return _Entry(None, name, port)


@dataclass(frozen=True)
class Allowlist:
    """Hosts and networks an allowlist setting lets through although they are not public."""

    entries: tuple[_Entry, ...] = ()

    @classmethod
    def parse(cls, values: Iterable[str]) -> "Allowlist":
        return cls(tuple(parse_entry(v) for v in values if v.strip()))

    def admits_name(self, host: str, port: int) -> bool:
        return any(e.name == host and e.admits_port(port) for e in self.entries)

    def admits_address(self, address, port: int) -> bool:
        return any(
            e.network is not None and address.version == e.network.version and address in e.network
            and e.admits_port(port)
            for e in self.entries
        )  # fmt: skip


# ---------------------------------------------------------------- addresses


_KIND_TEXT = {
    "metadata": _("a cloud metadata address"),
    "unspecified": _("an unspecified address"),
    "loopback": _("a loopback address"),
    "link-local": _("a link-local address"),
    "multicast": _("a multicast address"),
    "private": _("a private address"),
    "reserved": _("a reserved address"),
    "non-public": _("a non-public address"),
}


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped ::ffff:a.b.c.d, NAT64, 6to4, Teredo's client)."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    return None


def address_kind(address) -> str | None:
    """Why `address` is not a public destination ('loopback', 'private', ...), or None when it is."""
    if isinstance(address, ipaddress.IPv6Address):
        address = address.ipv4_mapped or address  # ::ffff:127.0.0.1 is 127.0.0.1
        if address.version == 6:
            inner = _embedded_ipv4(address)
            if inner is not None and address_kind(inner) is not None:
                return address_kind(inner)
    if address in METADATA_ADDRESSES:
        return "metadata"
    for kind, flag in (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
    ):
        if flag:
            return kind
    return None if address.is_global else "non-public"


def _ambiguous_number(host: str) -> bool:
    """True for hosts that only the C resolver reads as an address: 2130706433, 0x7f.1, 0177.0.0.1, 127.1.

    They would slip past a reader that checks the name as text; we refuse them outright (a real address
    is written in the usual dotted form, which `ipaddress` accepts).
    """
    if not host or any(c not in "0123456789abcdefx." for c in host):
        return False
    try:
        socket.inet_aton(host)
    except OSError:
        return False
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        return True
    return False


def ip_literal(host: str):
    """The address a URL host names literally (brackets and zone ids allowed), else None."""
    host = host.strip("[]")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


_resolved: dict[tuple[str, int], tuple[float, list]] = {}


def resolve(host: str, port: int) -> list:
    """The addresses `host` resolves to (remembered for RESOLVE_CACHE_SECONDS); socket.gaierror if none."""
    key = (host, port)
    now = time.monotonic()
    hit = _resolved.get(key)
    if hit is not None and hit[0] > now:
        return hit[1]
    addresses = []
    for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        if address not in addresses:
            addresses.append(address)
    if len(_resolved) >= _RESOLVE_CACHE_MAX:
        _resolved.clear()
    _resolved[key] = (now + RESOLVE_CACHE_SECONDS, addresses)
    return addresses


def _refused_host(host: str, kind: str, setting: str, *, named: bool) -> OutboundRefused:
    params = {"host": host, "kind": _KIND_TEXT[kind], "setting": setting}
    if named:
        # The resolved address itself is not repeated: the name and the kind are enough to act on.
        message = _("%(host)s resolves to %(kind)s; only public addresses are called unless it is in %(setting)s.")
    else:
        message = _("%(host)s is %(kind)s; only public addresses are called unless it is in %(setting)s.")
    return OutboundRefused(kind, _lazy_format(message, params))


class _lazy_format:
    """`message % params`, formatted when shown, so the active language applies."""

    def __init__(self, message, params):
        self.message, self.params = message, params

    def __str__(self):
        return str(self.message) % self.params


def checked_addresses(host: str, port: int, allowlist: Allowlist, setting: str) -> list:
    """The addresses a connection to `host:port` may use: all of them public or allowlisted, else refused.

    An allowlisted name admits whatever it resolves to; otherwise every address must be public or inside
    an allowlisted network (one bad address refuses the lot: a mixed answer is how rebinding starts).
    """
    host = host.lower().rstrip(".")
    literal = ip_literal(host)
    if literal is None and _ambiguous_number(host):
        raise OutboundRefused("notation", _("Write an IP address in its usual dotted decimal form, like 192.0.2.10."))
    addresses = [literal] if literal is not None else resolve(host, port)
    if literal is None and allowlist.admits_name(host, port):
        return addresses
    for address in addresses:
        kind = address_kind(address)
        if kind is not None and not allowlist.admits_address(address, port):
            raise _refused_host(host, kind, setting, named=literal is None)
    return addresses


def _parse(url: str):
    """(scheme, host, port) as requests and urllib3 will read the URL (one parser, no differentials)."""
    prepared = requests.models.PreparedRequest()
    try:
        prepared.prepare_url(url, None)
        parsed = parse_url(prepared.url)
    except (requests.RequestException, LocationParseError, ValueError, UnicodeError):
        raise OutboundRefused("url", _("Enter a valid http:// or https:// URL.")) from None
    scheme = (parsed.scheme or "").lower()
    if scheme not in SCHEMES or not parsed.host:
        raise OutboundRefused("scheme", _("Enter a valid http:// or https:// URL."))
    return scheme, parsed.host, parsed.port or (443 if scheme == "https" else 80)


def check_url(url: str, *, allowed_hosts: Iterable[str], setting: str) -> None:
    """Raise OutboundRefused unless `url` is one the guard would call (resolves the name now)."""
    _scheme, host, port = _parse(url)
    try:
        checked_addresses(host, port, _allowlist(tuple(allowed_hosts)), setting)
    except (socket.gaierror, UnicodeError):
        raise OutboundRefused("unresolved", _("The host name %(host)s cannot be resolved.") % {"host": host}) from None


def validation_error(url: str, *, allowed_hosts: Iterable[str], setting: str):
    """A django ValidationError for `url` (for a form or a model's clean()), or None when it is allowed."""
    from django.core.exceptions import ValidationError

    try:
        check_url(url, allowed_hosts=allowed_hosts, setting=setting)
    except OutboundRefused as refused:
        return ValidationError(str(refused), code=f"outbound_{refused.reason}")
    return None


# ---------------------------------------------------------------- the guarded HTTP client


class _PinnedConnectionMixin:
    """Connect to an address `checked_addresses` admitted, never to a fresh lookup of the name."""

    allowlist: Allowlist
    setting: str

    def _new_conn(self):
        try:
            addresses = checked_addresses(self._dns_host, self.port, self.allowlist, self.setting)
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc
        last_error = None
        for address in addresses:
            try:
                sock = urllib3_connection.create_connection(
                    (str(address), self.port),
                    self.timeout,
                    source_address=self.source_address,
                    socket_options=self.socket_options,
                )
            except TimeoutError as exc:
                raise ConnectTimeoutError(self, f"Connection to {self.host} timed out.") from exc
            except OSError as exc:
                last_error = exc
                continue
            sys.audit("http.client.connect", self, self.host, self.port)
            return sock
        raise NewConnectionError(self, f"Failed to establish a new connection: {last_error}")


def _pool_classes(allowlist: Allowlist, setting: str) -> dict:
    guard = {"allowlist": allowlist, "setting": setting}
    http = type("GuardedHTTPConnection", (_PinnedConnectionMixin, HTTPConnection), guard)
    https = type("GuardedHTTPSConnection", (_PinnedConnectionMixin, HTTPSConnection), guard)
    return {
        "http": type("GuardedHTTPConnectionPool", (HTTPConnectionPool,), {"ConnectionCls": http}),
        "https": type("GuardedHTTPSConnectionPool", (HTTPSConnectionPool,), {"ConnectionCls": https}),
    }


class _GuardedAdapter(HTTPAdapter):
    def __init__(self, allowlist: Allowlist, setting: str, **kwargs):
        self._pools = _pool_classes(allowlist, setting)
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = self._pools


class GuardedSession(requests.Session):
    """A keep-alive requests session that only reaches what the guard admits; no redirects, timeout required.

    Proxies and other settings from the environment are ignored (a proxy would be the address checked);
    REQUESTS_CA_BUNDLE still names the CA bundle.
    """

    def __init__(self, allowlist: Allowlist, setting: str):
        super().__init__()
        self.trust_env = False
        self.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        for prefix in ("http://", "https://"):
            self.mount(prefix, _GuardedAdapter(allowlist, setting))

    def request(self, method, url, *args, **kwargs):
        if kwargs.get("timeout") is None:
            raise ValueError("outbound calls need a timeout")
        kwargs["allow_redirects"] = False
        scheme = url.split(":", 1)[0].lower() if isinstance(url, str) else ""
        if scheme not in SCHEMES:
            raise OutboundRefused("scheme", _("Enter a valid http:// or https:// URL."))
        return super().request(method, url, *args, **kwargs)


_allowlists: dict[tuple, Allowlist] = {}
_sessions: dict[tuple, GuardedSession] = {}


def _allowlist(values: tuple) -> Allowlist:
    allowlist = _allowlists.get(values)
    if allowlist is None:
        allowlist = _allowlists[values] = Allowlist.parse(values)
    return allowlist


def session(allowed_hosts: Iterable[str], *, setting: str) -> GuardedSession:
    """The process's guarded session for one allowlist (one per value, so a changed setting takes effect)."""
    key = (setting, tuple(allowed_hosts))
    guarded = _sessions.get(key)
    if guarded is None:
        guarded = _sessions[key] = GuardedSession(_allowlist(key[1]), setting)
    return guarded


def failure_text(exc: BaseException) -> str:
    """What may be stored and shown about a failed call: its kind, never the network detail in `str(exc)`."""
    if isinstance(exc, OutboundRefused):
        return REFUSED_TEXT
    if isinstance(exc, requests.Timeout):
        return TIMEOUT_TEXT
    response = getattr(exc, "response", None)
    if response is not None:
        return status_text(response.status_code)
    return CONNECTION_TEXT


def status_text(code: int) -> str:
    """ "HTTP 503": what a host the guard admitted answered (it tells nothing of the network behind it)."""
    return f"HTTP {code}"
