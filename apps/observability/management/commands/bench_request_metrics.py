"""docs/benchmarks.md, issue 15: the cost per request of the request metrics middleware.

The ERP inbound benchmark's load (apps/erp/management/commands/bench_inbound.py: signed progress messages on
the real application under gunicorn, PostgreSQL) against three servers started side by side in the same run:
the middleware off (the limit), Prometheus metrics only, and Prometheus metrics plus the stored per-tenant
statistics (the default). Rounds alternate between the servers. Then the middleware alone in process: the
time it adds around a view that does nothing, with a request resolved to a view name and a signed-in user.
"""

import asyncio
import json
import os
import signal
import statistics
import tempfile
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from apps.erp import bench_support as bench


class MonotonicTarget(bench.Target):
    """bench_inbound's messages with a progress that never falls for a job (issue 11 refuses a regressing one
    with 422, which would measure the refusal instead of the update): the k-th message to a job says k%."""

    def make(self, i: int) -> bytes:
        payload = super().make(i)
        _head, _, body = payload.partition(b"\r\n\r\n")
        data = json.loads(body)
        data["progress"] = min(99, i // len(self.job_ids))
        return self.signed(i, json.dumps(data).encode())


VARIANTS = (
    ("off (limit)", {"OBSERVABILITY_REQUEST_METRICS": "false"}),
    ("Prometheus only", {"OBSERVABILITY_REQUEST_METRICS": "true", "OBSERVABILITY_REQUEST_STATS": "false"}),
    ("Prometheus + stored stats", {"OBSERVABILITY_REQUEST_METRICS": "true", "OBSERVABILITY_REQUEST_STATS": "true"}),
)


def _in_process(n: int) -> dict:
    """Microseconds the middleware adds per request (median of 5 runs of n calls), stats buffered, not flushed."""
    from django.contrib.auth.models import AnonymousUser
    from django.http import HttpResponse
    from django.test import RequestFactory
    from django.urls import resolve

    from apps.observability.middleware import RequestMetricsMiddleware

    request = RequestFactory().post(bench.INBOUND_PATH)
    request.resolver_match = resolve(bench.INBOUND_PATH)
    request.user = AnonymousUser()
    response = HttpResponse()

    def view(_request):
        return response

    results = {}
    original = settings.OBSERVABILITY_STATS_FLUSH_SECONDS
    settings.OBSERVABILITY_STATS_FLUSH_SECONDS = 1e9  # measure the per-request path, not the periodic flush
    try:
        for label, store in (("Prometheus only", False), ("Prometheus + stored stats", True)):
            middleware = RequestMetricsMiddleware(view)
            middleware.store = store
            runs = []
            for _ in range(5):
                began = time.perf_counter()
                for _ in range(n):
                    middleware(request)
                metered = time.perf_counter() - began
                began = time.perf_counter()
                for _ in range(n):
                    view(request)
                bare = time.perf_counter() - began
                runs.append((metered - bare) / n * 1e6)
            results[label] = statistics.median(runs)
    finally:
        settings.OBSERVABILITY_STATS_FLUSH_SECONDS = original
        from apps.observability.stats_buffer import buffer

        buffer.drain()
    return results


def _full_stack(job_ids, *, requests: int, rounds: int, start: int, warmup: int = 20) -> dict:
    """Milliseconds per inbound request through the whole Django stack in this process (the WSGI handler of a
    test client, the database for real), the middleware off and on, alternating: far less noisy than loopback
    HTTP on a loaded machine, and the same work per request."""
    from django.test import Client

    times = {"off (limit)": [], "Prometheus + stored stats": []}
    i = start
    original = settings.OBSERVABILITY_REQUEST_METRICS, settings.OBSERVABILITY_STATS_FLUSH_SECONDS
    debug, settings.DEBUG = settings.DEBUG, False  # no query log in memory, as in production
    try:
        for _round in range(rounds):
            for label, on in (("off (limit)", False), ("Prometheus + stored stats", True)):
                settings.OBSERVABILITY_REQUEST_METRICS = on
                settings.OBSERVABILITY_STATS_FLUSH_SECONDS = original[1]
                # A new handler: it loads the middleware list with the setting above.
                client = Client(HTTP_HOST="127.0.0.1")
                target = MonotonicTarget(bench.INBOUND_PATH, job_ids, 0, f"inproc-{start}")
                statuses = {}
                began = None
                for n in range(-warmup, requests):  # the first `warmup` requests are not timed
                    if n == 0:
                        began = time.perf_counter()
                    head, _, body = target.make(i).partition(b"\r\n\r\n")
                    fields = dict(line.split(": ", 1) for line in head.decode().split("\r\n")[1:])
                    response = client.post(
                        bench.INBOUND_PATH,
                        body,
                        content_type="application/json",
                        HTTP_AUTHORIZATION=fields["Authorization"],
                        HTTP_X_SIGNATURE=fields["X-Signature"],
                        HTTP_X_REQUEST_ID=fields["X-Request-Id"],
                    )
                    statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                    i += 1
                times[label].append(((time.perf_counter() - began) / requests * 1000, statuses))
    finally:
        settings.OBSERVABILITY_REQUEST_METRICS, settings.OBSERVABILITY_STATS_FLUSH_SECONDS = original
        settings.DEBUG = debug
    return times


class Command(BaseCommand):
    help = "Benchmark the request metrics middleware: the inbound benchmark with it off and on, same run (PostgreSQL)."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=18601, help="first of three consecutive ports")
        parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers per server")
        parser.add_argument("--concurrency", type=int, default=4)
        parser.add_argument("--seconds", type=float, default=12.0, help="measured seconds per server and round")
        parser.add_argument("--warmup", type=float, default=2.0)
        parser.add_argument("--jobs", type=int, default=300)
        parser.add_argument("--rounds", type=int, default=3)
        parser.add_argument("--in-process", type=int, default=20000, help="calls for the in-process measurement")
        parser.add_argument("--full-stack", type=int, default=300, help="inbound requests per round, in process")

    def handle(
        self, *args, port, workers, concurrency, seconds, warmup, jobs, rounds, in_process, full_stack, **options
    ):
        if connection.vendor != "postgresql":
            raise CommandError("bench_request_metrics needs PostgreSQL: set DATABASE_URL to a scratch database")
        job_ids = bench.prepare(jobs)
        # A scratch database: every run starts the bench tenant's jobs at 0% again (see MonotonicTarget).
        from apps.jobs.models import Job

        Job.objects.filter(tenant__slug="bench-inbound").update(progress=0)
        servers = []
        multiproc = tempfile.mkdtemp(prefix="bench-metrics-")
        try:
            for i, (label, variant) in enumerate(VARIANTS):
                servers.append((label, port + i, self._start(port + i, workers, variant, f"{multiproc}/{i}")))
            for _label, server_port, _process in servers:
                self._wait_ready(server_port)
            results = {label: [] for label, *_ in servers}
            counter = [0]
            run_tag = f"{int(time.time())}"
            for round_number in range(rounds):
                for label, server_port, _process in servers:
                    target = MonotonicTarget(
                        bench.INBOUND_PATH, job_ids, server_port, f"{run_tag}-{round_number}-{server_port}"
                    )
                    asyncio.run(
                        bench.drive(target, port=server_port, concurrency=concurrency, seconds=warmup, counter=counter)
                    )
                    result = asyncio.run(
                        bench.drive(target, port=server_port, concurrency=concurrency, seconds=seconds, counter=counter)
                    )
                    results[label].append(result)
                    self.stdout.write(
                        f"round {round_number + 1} {label:26} {result['rps']:7.1f} req/s"
                        f"  p50 {result['p50_ms']:6.1f} ms  p95 {result['p95_ms']:6.1f} ms"
                        f"  statuses {result['statuses']}"
                    )
        finally:
            for _label, _port, process in servers:
                process.send_signal(signal.SIGTERM)
            for _label, _port, process in servers:
                process.wait(timeout=30)
        limit = statistics.mean(r["rps"] for r in results[VARIANTS[0][0]])
        for label, runs in results.items():
            rps = statistics.mean(r["rps"] for r in runs)
            p50 = statistics.mean(r["p50_ms"] for r in runs)
            self.stdout.write(
                f"{label:26} mean {rps:7.1f} req/s ({rps / limit:.1%} of off)  mean p50 {p50:6.1f} ms"
                f"  per-request cost {(1 / rps - 1 / limit) * 1000 * concurrency:+.2f} ms (from throughput)"
            )
        for label, micros in _in_process(in_process).items():
            self.stdout.write(f"in process: {label:26} {micros:6.1f} µs per request (middleware alone)")
        if full_stack:
            times = _full_stack(job_ids, requests=full_stack, rounds=rounds, start=counter[0] + 1)
            for label, runs in times.items():
                per_round = ", ".join(f"{ms:.2f}" for ms, _statuses in runs)
                self.stdout.write(
                    f"in process, whole stack: {label:26} {statistics.mean(ms for ms, _ in runs):6.2f} ms per inbound"
                    f" request (rounds {per_round}; statuses {runs[-1][1]})"
                )

    def _start(self, port, workers, variant, multiproc_dir):
        os.makedirs(multiproc_dir, exist_ok=True)
        return bench.start_server(port, workers, bench.server_env(**variant, PROMETHEUS_MULTIPROC_DIR=multiproc_dir))

    def _wait_ready(self, port):
        if not bench.wait_ready(port, timeout=60, interval=0.3):
            raise CommandError(f"gunicorn on port {port} did not become ready")
