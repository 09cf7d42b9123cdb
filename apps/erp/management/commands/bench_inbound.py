"""docs/benchmarks.md, issue 5: the inbound progress endpoint against a bare one-INSERT view, same server, same run.

PostgreSQL only; writes to the database it is pointed at (use a scratch one, migrated). Starts gunicorn
(apps.erp.bench_wsgi) on 127.0.0.1, drives it from an asyncio load generator on loopback with signed
requests (apps/erp/bench_support.py, shared with bench_request_metrics), and prints requests/s and latency
percentiles for each target.
"""

import asyncio
import signal
import statistics
import time

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from apps.erp import bench_support as bench


class Command(BaseCommand):
    help = "Benchmark POST /api/v1/erp/inbound/job/progress against a bare one-INSERT view under gunicorn (PostgreSQL)."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8391)
        parser.add_argument("--workers", type=int, default=4, help="gunicorn sync workers")
        parser.add_argument("--concurrency", type=int, default=8, help="open connections of the load generator")
        parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds per target")
        parser.add_argument("--warmup", type=float, default=3.0)
        parser.add_argument("--jobs", type=int, default=500, help="running jobs the messages are spread over")
        parser.add_argument("--rounds", type=int, default=2, help="bare, inbound, bare, inbound, ...")

    def handle(self, *args, port, workers, concurrency, seconds, warmup, jobs, rounds, **options):
        if connection.vendor != "postgresql":
            raise CommandError("bench_inbound needs PostgreSQL: set DATABASE_URL to a scratch database")
        job_ids = bench.prepare(jobs)
        server = bench.start_server(port, workers, bench.server_env())
        try:
            self._wait_ready(port)
            results = []
            run_tag = f"{int(time.time())}"
            counter = [0]
            for round_number in range(rounds):
                for name, path in (("bare INSERT view", bench.BARE_PATH), ("inbound progress", bench.INBOUND_PATH)):
                    target = bench.Target(path, job_ids, port, f"{run_tag}-{round_number}-{name[:4]}")
                    # A warm-up, then the measured run.
                    asyncio.run(
                        bench.drive(target, port=port, concurrency=concurrency, seconds=warmup, counter=counter)
                    )
                    result = asyncio.run(
                        bench.drive(target, port=port, concurrency=concurrency, seconds=seconds, counter=counter)
                    )
                    results.append((round_number + 1, name, result))
                    self.stdout.write(
                        f"round {round_number + 1} {name:18} {result['rps']:8.1f} req/s"
                        f"  p50 {result['p50_ms']:6.1f} ms  p95 {result['p95_ms']:6.1f} ms"
                        f"  p99 {result['p99_ms']:6.1f} ms  statuses {result['statuses']}"
                    )
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
        bare = [r["rps"] for _n, name, r in results if name.startswith("bare")]
        inbound = [r["rps"] for _n, name, r in results if name.startswith("inbound")]
        self.stdout.write(
            f"inbound / bare throughput: {statistics.mean(inbound) / statistics.mean(bare):.0%} "
            f"(mean of {rounds} rounds: {statistics.mean(inbound):.1f} vs {statistics.mean(bare):.1f} req/s)"
        )

    def _wait_ready(self, port):
        if not bench.wait_ready(port, timeout=30, interval=0.2):
            raise CommandError("gunicorn did not become ready")
