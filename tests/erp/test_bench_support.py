"""The benchmark commands' shared module (apps/erp/bench_support.py) builds the requests both commands send."""

import json

from apps.erp import bench_support as bench
from apps.erp import signing
from apps.observability.management.commands.bench_request_metrics import MonotonicTarget


def _split(raw: bytes):
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    return lines[0], dict(line.split(": ", 1) for line in lines[1:]), body


def test_a_target_request_is_signed_over_its_exact_body_and_distinct_per_index():
    target = bench.Target(bench.INBOUND_PATH, ["ERP-1", "ERP-2"], 18300, "t")
    first, headers, body = _split(target.make(3))
    assert first == f"POST {bench.INBOUND_PATH} HTTP/1.1"
    assert headers["Host"] == "127.0.0.1:18300" and int(headers["Content-Length"]) == len(body)
    assert headers["Authorization"] == f"Bearer {bench.TOKEN}"
    assert headers["X-Signature"] == signing.x_signature(bench.SECRET, body)
    assert headers["X-Request-Id"] == "bench-t-0000000003"
    assert json.loads(body)["job_id"] == "ERP-2" and json.loads(body)["progress"] == 3


def test_the_metrics_benchmarks_target_differs_only_in_a_progress_that_never_falls():
    target = MonotonicTarget(bench.INBOUND_PATH, ["ERP-1", "ERP-2"], 18300, "m")
    progress = [json.loads(_split(target.make(i))[2])["progress"] for i in range(0, 8, 2)]  # job ERP-1's
    assert progress == sorted(progress) == [0, 1, 2, 3]
    _first, headers, body = _split(target.make(5))
    assert headers["X-Signature"] == signing.x_signature(bench.SECRET, body)
    assert headers["X-Request-Id"] == "bench-m-0000000005"
