"""In-process cost of the IP allow/block lists on the hot path (IPFilterMiddleware: one cache read and the
match), against a request that passes no filter, in alternating blocks on the configured cache (use Redis).

    manage.py bench_ip_filter --entries 20 --requests 5000 --rounds 3

Writes `--entries` block entries (scope all/api/erp_inbound, none matching 127.0.0.1) to the database it
is pointed at and deletes them again; use a scratch database."""

import statistics
import time

from django.core.management.base import BaseCommand
from django.test import RequestFactory

from apps.security import iplists
from apps.security.middleware import IPFilterMiddleware
from apps.security.models import IPListEntry


class Command(BaseCommand):
    help = "Time IPFilterMiddleware per request (ERP inbound path) against a pass-through middleware."

    def add_arguments(self, parser):
        parser.add_argument("--entries", type=int, default=20)
        parser.add_argument("--requests", type=int, default=5000)
        parser.add_argument("--rounds", type=int, default=3)

    def handle(self, *args, entries, requests, rounds, **options):
        IPListEntry.objects.filter(reason="bench_ip_filter").delete()
        scopes = ("all", "api", "erp_inbound")
        for i in range(entries):
            network = f"203.0.{i // 256}.{i % 256}" if i % 2 else f"2001:db8:{i:x}::/48"
            IPListEntry.objects.create(
                network=network, list_type="blacklist", scope=scopes[i % 3], reason="bench_ip_filter"
            )
        iplists.invalidate()
        request = RequestFactory().post("/api/v1/erp/inbound/job/progress", REMOTE_ADDR="127.0.0.1")
        request.client_ip = "127.0.0.1"
        filtered = IPFilterMiddleware(lambda r: None)
        plain = lambda r: None  # noqa: E731

        def per_request(handler) -> float:
            start = time.perf_counter()
            for _ in range(requests):
                handler(request)
            return (time.perf_counter() - start) / requests * 1e6

        per_request(filtered)  # warm: the snapshot is cached and parsed once
        rows = []
        for n in range(1, rounds + 1):
            base, with_filter = per_request(plain), per_request(filtered)
            rows.append(with_filter - base)
            self.stdout.write(f"round {n}: filter {with_filter:.1f} us/request, pass-through {base:.2f} us")
        self.stdout.write(f"IP filter cost: median {statistics.median(rows):.1f} us/request ({entries} entries)")
        IPListEntry.objects.filter(reason="bench_ip_filter").delete()
        iplists.invalidate()
