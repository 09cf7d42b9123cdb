"""Prometheus counters of signing in (issue 15: sign-in failures; every process, /metrics sums them)."""

from prometheus_client import Counter

SIGN_IN_FAILURES = Counter(
    "tezgah_signin_failures_total", "Failed sign-in steps (password, authenticator code, ...)", ["step"]
)
