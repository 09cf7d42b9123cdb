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
            network = f"100.64.{i // 256}.{i % 256}" if i % 2 else f"2001:db8:f{i:03x}::/48"
            IPListEntry.objects.create(
                network=network, list_type="blacklist", scope=scopes[i % 3], reason="bench_ip_filter"
            )
        iplists.invalidate()
        request = RequestFactory().post("/api/v1/erp/inbound/job/progress", REMOTE_ADDR="127.0.0.1")
        request.client_ip = "127.0.0.1"
        filtered = IPFilterMiddleware(lambda r: None)
        plain = lambda r: None  # noqa: E731
        from django.core.cache import cache

        cache.set("bench_ip_filter:probe", "x", 600)
        one_read = lambda r: cache.get("bench_ip_filter:probe")  # noqa: E731 - the limit: one cache read

        def per_request(handler) -> float:
            start = time.perf_counter()
            for _ in range(requests):
                handler(request)
            return (time.perf_counter() - start) / requests * 1e6

        per_request(filtered)  # warm: the snapshot is cached and parsed once
        rows = []
        for n in range(1, rounds + 1):
            base, read, with_filter = per_request(plain), per_request(one_read), per_request(filtered)
            rows.append((with_filter - base, read))
            self.stdout.write(
                f"round {n}: filter {with_filter:.1f} us/request, one bare cache read {read:.1f} us, "
                f"pass-through {base:.2f} us"
            )
        cost = statistics.median(r[0] for r in rows)
        read = statistics.median(r[1] for r in rows)
        self.stdout.write(
            f"IP filter: median {cost:.1f} us/request against {read:.1f} us for one cache read "
            f"({cost / read:.2f}x) with {entries} entries"
        )
        IPListEntry.objects.filter(reason="bench_ip_filter").delete()
        iplists.invalidate()
