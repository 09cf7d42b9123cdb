"""Prometheus counters of security refusals (every process; /metrics sums them)."""

from prometheus_client import Counter

ADMIN_IP_REFUSED = Counter(
    "tezgah_admin_ip_refused_total",
    "Requests to a staff surface refused by ADMIN_IP_ALLOWLIST, by surface",
    ["surface"],
)

# issue 14: every security event, by type and severity (both from fixed choices: bounded labels).
SECURITY_EVENTS = Counter(
    "tezgah_security_events_total",
    "Security events written (apps.security.events.record_event), by event type and severity",
    ["event_type", "severity"],
)

IP_REFUSED = Counter(
    "tezgah_ip_refused_total",
    "Requests refused by the IP allow/block lists (IP_FILTER_MODE), by scope",
    ["scope"],
)
