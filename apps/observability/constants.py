"""Constants of request metrics and stored request statistics."""

# Upper bounds (seconds) of the latency buckets, the same for the Prometheus histogram and the stored
# statistics, so a P95 from either agrees within a bucket. The last stored bucket is "above 60 s".
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# Stored columns b0..b13: b<i> counts requests with duration <= LATENCY_BUCKETS[i]; b13 the rest.
BUCKET_COLUMNS = tuple(f"b{i}" for i in range(len(LATENCY_BUCKETS) + 1))

# Labels of requests no single tenant can be named for.
NO_TENANT = "none"
OTHER_TENANT = "other"
MULTI_TENANT = "multi"
UNRESOLVED_VIEW = "unresolved"

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

WINDOWS = {"day": 86400, "week": 7 * 86400, "month": 30 * 86400}
