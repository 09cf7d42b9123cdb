"""The reporting benchmarks of docs/benchmarks.md, reproducible: summary, detail pages, a 1M-row CSV export,
each beside a hand-written SQL equivalent run through psql in the same run (PostgreSQL only); and with
--rollup, the summary, the overview page and its three data fragments before (REPORTING_ROLLUP off: the raw
scan) and after (the rollups), in the same run, on PostgreSQL or SQLite."""

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.test import Client, override_settings
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from apps.accounts.selectors import tenants_for
from apps.catalog.models import Machine
from apps.reporting import services

TWO_FILTERS = {"status": "succeeded,failed", "machine": "M01"}


class Command(BaseCommand):
    help = "Benchmark the reporting API and CSV export against psql on the current PostgreSQL database."

    def add_arguments(self, parser):
        parser.add_argument("--user", default="analist", help="Who asks (default: seed_demo's analyst)")
        parser.add_argument("--runs", type=int, default=15, help="Timed requests per case (P50 of these)")
        parser.add_argument("--skip-export", action="store_true", help="Leave out the 1M-row CSV export")
        parser.add_argument("--only-export", action="store_true", help="Only the exports (and COPY beside them)")
        parser.add_argument(
            "--export-formats",
            default="csv",
            help="Comma-separated: csv, csv_excel, json, xlsx (COPY path on PostgreSQL), csv_python, json_python "
            "(the Python writers, as on SQLite); default csv",
        )
        parser.add_argument(
            "--export-filters", default="{}", help='Report filters of the exports as JSON, e.g. {"status": ["failed"]}'
        )
        parser.add_argument(
            "--rollup",
            action="store_true",
            help="Only the rollup comparison: summary, overview and its fragments, raw scan vs rollups (any database)",
        )
        parser.add_argument("--export-child", help=argparse_hidden())
        parser.add_argument("--python-writers", action="store_true", help=argparse_hidden())

    def handle(self, *args, user, runs, skip_export, export_child, only_export, export_formats, **options):
        if options["rollup"]:
            return self._rollup_comparison(user, runs)
        if connection.vendor != "postgresql":
            raise CommandError("The reporting benchmarks need PostgreSQL (set DATABASE_URL).")
        if export_child:
            if options["python_writers"]:
                from apps.reporting import copy_export

                copy_export.available = lambda: False
            return self._export_child(export_child)
        self.export_formats = [f.strip() for f in export_formats.split(",") if f.strip()]
        self.export_filters = json.loads(options["export_filters"])
        if not shutil.which("psql"):
            raise CommandError("psql is needed for the SQL comparison runs.")
        analyst = get_user_model().objects.filter(username=user).first()
        if analyst is None:
            raise CommandError(f"No user {user!r}: run `manage.py seed_demo --jobs 1000000` first.")
        client = self._signed_in(analyst)
        tenant_ids = list(tenants_for(analyst).values_list("pk", flat=True))
        machine_ids = list(Machine.objects.filter(code=TWO_FILTERS["machine"]).values_list("pk", flat=True))
        results = {"jobs": self._count(), "runs": runs}
        if only_export:
            results.update(self._export(analyst, tenant_ids))
            self.stdout.write(json.dumps(results, indent=2))
            return

        results["summary_no_filter_ms"] = self._p50(lambda: client.get("/reports/summary"), runs)
        results["summary_no_filter_sql_ms"] = self._psql_p50(summary_sql(tenant_ids, []), runs)
        narrow = ["status IN ('succeeded','failed')", f"machine_id IN ({','.join(map(str, machine_ids))})"]
        results["summary_two_filters_ms"] = self._p50(lambda: client.get("/reports/summary", TWO_FILTERS), runs)
        results["summary_two_filters_sql_ms"] = self._psql_p50(summary_sql(tenant_ids, narrow), runs)
        results["detail_page_1_ms"] = self._p50(lambda: client.get("/reports/detail", {"page": 1, "limit": 50}), runs)
        results["detail_page_1000_ms"] = self._p50(
            lambda: client.get("/reports/detail", {"page": 1000, "limit": 50}), runs
        )
        results["panel_overview_ms"] = self._p50(lambda: client.get("/panel/"), runs)
        results["panel_overview_two_filters_ms"] = self._p50(lambda: client.get("/panel/", TWO_FILTERS), runs)
        if not skip_export:
            results.update(self._export(analyst, tenant_ids))
        self.stdout.write(json.dumps(results, indent=2))

    def _rollup_comparison(self, username, runs):
        analyst = get_user_model().objects.filter(username=username).first()
        if analyst is None:
            raise CommandError(f"No user {username!r}: run `manage.py seed_demo` first.")
        client = self._signed_in(analyst)
        cases = {
            "summary_no_filter": ("/reports/summary", {}),
            "summary_two_filters": ("/reports/summary", TWO_FILTERS),
            "panel_page": ("/panel/", {}),
            "panel_kpis": ("/panel/data/kpis", {}),
            "panel_breakdowns": ("/panel/data/breakdowns", {}),
            "panel_trend": ("/panel/data/trend", {}),
            "panel_kpis_two_filters": ("/panel/data/kpis", TWO_FILTERS),
            "panel_breakdowns_two_filters": ("/panel/data/breakdowns", TWO_FILTERS),
            "panel_trend_two_filters": ("/panel/data/trend", TWO_FILTERS),
        }
        results = {"vendor": connection.vendor, "jobs": self._count(), "runs": runs, "load": os.getloadavg()[0]}
        for label, rollup in (("before", False), ("after", True)):
            with override_settings(REPORTING_ROLLUP=rollup):
                timed = {
                    name: self._p50(lambda u=url, p=params: client.get(u, p), runs)
                    for name, (url, params) in cases.items()
                }
                # What a browser waits for: the page and its three fragments (fetched one after another here).
                timed["overview_total"] = round(
                    sum(timed[k] for k in ("panel_page", "panel_kpis", "panel_breakdowns", "panel_trend")), 1
                )
                timed["overview_total_two_filters"] = round(
                    timed["panel_page"] + sum(timed[f"panel_{k}_two_filters"] for k in ("kpis", "breakdowns", "trend")),
                    1,
                )
            results[label] = timed
        results["load_after"] = os.getloadavg()[0]
        self.stdout.write(json.dumps(results, indent=2))

    # ------------------------------------------------------------ helpers
    def _signed_in(self, user):
        device = TOTPDevice.objects.filter(user=user, confirmed=True).first() or TOTPDevice.objects.create(
            user=user, name="bench", confirmed=True
        )
        client = Client(HTTP_HOST="localhost", secure=True)
        client.force_login(user)
        session = client.session
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id
        session.save()
        return client

    def _count(self):
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM jobs_job")
            return cursor.fetchone()[0]

    def _p50(self, call, runs):
        response = call()  # warm-up (and a check that the request works)
        if response.status_code != 200:
            raise CommandError(f"{response.status_code} {response.get('Location')}: {response.content[:300]!r}")
        timings = []
        for _ in range(runs):
            started = time.perf_counter()
            call()
            timings.append((time.perf_counter() - started) * 1000)
        return round(statistics.median(timings), 1)

    def _psql(self, script):
        db = settings.DATABASES["default"]
        env = {**os.environ, "PGPASSWORD": str(db.get("PASSWORD") or "")}
        args = ["psql", "-X", "-q", "-h", db["HOST"] or "localhost", "-p", str(db["PORT"] or 5432)]
        args += ["-U", db["USER"], "-d", db["NAME"], "-v", "ON_ERROR_STOP=1"]
        # Our own psql with our own database settings; nothing here comes from a request.
        return subprocess.run(args, input=script, env=env, capture_output=True, text=True, check=True).stdout  # noqa: S603

    def _psql_p50(self, sql, runs):
        script = "\\timing on\n\\o /dev/null\n" + (sql + ";\n") * (runs + 1)
        out = self._psql(script)
        times = [float(line.split()[1]) for line in out.splitlines() if line.startswith("Time:")][1:]
        return round(statistics.median(times), 1)

    def _export(self, analyst, tenant_ids):
        results = {}
        for fmt in self.export_formats:
            python = fmt.endswith("_python")
            export = services.request_export_record(
                analyst, format=fmt.removesuffix("_python"), filters=self._validated(self.export_filters)
            )
            child = subprocess.run(  # noqa: S603 - this very command, in a fresh process to measure its RSS
                [sys.executable, "manage.py", "bench_reporting", "--export-child", str(export.pk)]
                + (["--python-writers"] if python else []),
                capture_output=True,
                text=True,
                check=True,
                cwd=settings.BASE_DIR,
            )
            measured = json.loads(child.stdout.strip().splitlines()[-1])
            rows = measured["rows"]
            results[f"{fmt}_rows"] = rows
            results[f"{fmt}_seconds"] = measured["seconds"]
            results[f"{fmt}_rows_per_second"] = round(rows / measured["seconds"])
            results[f"{fmt}_peak_rss_mb"] = measured["peak_rss_mb"]
            results[f"{fmt}_rss_before_mb"] = measured["rss_before_mb"]
            results[f"{fmt}_size_mb"] = measured["size_mb"]
            results[f"{fmt}_progress_updates"] = measured.get("progress_updates")
        # The export's own query (same rows, same columns and joins, same order), its parameters bound by psycopg.
        import psycopg

        from apps.reporting import selectors

        rows_qs = selectors.report_rows(
            analyst, self._validated(self.export_filters), as_of=selectors.snapshot_job_id()
        )
        sql, params = rows_qs.query.sql_with_params()
        connection.ensure_connection()
        bound = psycopg.ClientCursor(connection.connection).mogrify(sql, params)
        copy_sql = f"COPY ({bound}) TO STDOUT WITH CSV HEADER"
        started = time.perf_counter()
        self._psql(copy_sql + ";\n")
        copy_seconds = time.perf_counter() - started
        results["copy_seconds"] = round(copy_seconds, 2)
        results["copy_rows_per_second"] = round(rows / copy_seconds)
        for fmt in self.export_formats:
            share = results[f"{fmt}_rows_per_second"] / results["copy_rows_per_second"]
            results[f"{fmt}_share_of_copy"] = round(share, 3)
        return results

    @staticmethod
    def _validated(filters):
        from apps.reporting.serializers import ReportFilterSerializer

        parsed = ReportFilterSerializer(data=filters)
        parsed.is_valid(raise_exception=True)
        return parsed.validated_data

    def _export_child(self, export_id):
        """Run one export in this fresh process and report its time and this process's peak RSS."""
        from apps.reporting import copy_export

        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        seen = []
        report = copy_export.SideProgress.__call__

        def counted(side, n):
            seen.append(n)
            return report(side, n)

        copy_export.SideProgress.__call__ = counted
        started = time.perf_counter()
        export = services.write_export(export_id)
        seconds = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        self.stdout.write(
            json.dumps(
                {
                    "rows": export.rows_written,
                    "seconds": round(seconds, 2),
                    "peak_rss_mb": round(peak, 1),
                    "rss_before_mb": round(before, 1),
                    "size_mb": round(export.size_bytes / 2**20, 1),
                    "progress_updates": len(seen),
                }
            )
        )


def argparse_hidden():
    import argparse

    return argparse.SUPPRESS


def summary_sql(tenant_ids, narrow):
    """The summary's aggregates as one hand-written query: grouping sets for the breakdowns, percentile_disc."""
    where = " AND ".join([f"tenant_id IN ({','.join(map(str, tenant_ids))})", *narrow])
    # Integer ids and fixed conditions only, nothing from a user.
    return (
        f"WITH f AS MATERIALIZED (SELECT status, model_type_id, machine_id, post_id, duration_ms FROM jobs_job "  # noqa: S608
        f"WHERE {where}) "
        "SELECT (SELECT json_agg(g) FROM (SELECT status, model_type_id, machine_id, post_id, count(*) AS n, "
        "count(*) FILTER (WHERE status = 'succeeded') AS ok, count(*) FILTER (WHERE status = 'failed') AS failed "
        "FROM f GROUP BY GROUPING SETS ((), (status), (model_type_id), (machine_id), (post_id))) g), "
        "(SELECT percentile_disc(ARRAY[0.5, 0.95]) WITHIN GROUP (ORDER BY duration_ms) FROM f "
        "WHERE duration_ms IS NOT NULL)"
    )
