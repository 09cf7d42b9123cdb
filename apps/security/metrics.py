"""Prometheus counters of security refusals (every process; /metrics sums them)."""

from prometheus_client import Counter

ADMIN_IP_REFUSED = Counter(
    "tezgah_admin_ip_refused_total",
    "Requests to a staff surface refused by ADMIN_IP_ALLOWLIST, by surface",
    ["surface"],
)
