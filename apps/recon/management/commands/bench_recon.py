"""`manage.py bench_recon --rows 100000`: end-to-end recon on PostgreSQL beside the bare FULL OUTER JOIN.

Makes a tenant with N jobs (INSERT ... SELECT generate_series), writes an ERP export of N rows with 1 %
of each break type to a file, then times: load (COPY into staging), the run (portal snapshot, join,
breaks written), a second run over the same differences (updates), and, on the same staged tables, the
bare FULL OUTER JOIN in plain SQL (the limit). Peak memory is the process's max RSS. PostgreSQL only.
"""

import csv
import resource
import tempfile
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from apps.accounts.models import Tenant
from apps.catalog.models import Machine, ModelType, Post
from apps.erp.models import IntegrationProfile
from apps.jobs.models import Job
from apps.recon import services
from apps.recon.models import FileSource


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Command(BaseCommand):
    help = "Benchmark recon end to end (file on disk to breaks written) beside the bare FULL OUTER JOIN."

    def add_arguments(self, parser):
        parser.add_argument("--rows", type=int, default=100_000)
        parser.add_argument(
            "--new-jobs",
            action="store_true",
            help="make a new tenant with N jobs even if an earlier bench left one (default: reuse it)",
        )
        parser.add_argument(
            "--setup-only", action="store_true", help="only make (or find) the tenant with N jobs, outside the lock"
        )
        parser.add_argument("--keep", action="store_true", help="keep the staged rows and snapshots afterwards")

    def _tenant_with_jobs(self, n: int, *, new: bool):
        """A bench tenant with exactly n jobs: an earlier run's (found by its slug) unless `new`.

        The jobs are written by one INSERT ... SELECT generate_series with the report rollups' per-row
        triggers paused (reporting.rollup.paused, seed_demo's rule: nothing else writes jobs meanwhile) and
        rebuilt once: with the triggers on, 1M jobs took over 20 minutes (every insert upserts one rollup row).
        """
        from apps.reporting import rollup

        prefix = f"bench-recon-{n}-"
        if not new:
            for tenant in Tenant.objects.filter(slug__startswith=prefix).order_by("-pk"):
                if Job.objects.filter(tenant=tenant).count() == n:
                    self.stdout.write(f"setup: reusing tenant {tenant.slug} with {n} jobs")
                    return tenant
        slug = f"{prefix}{time.time_ns()}"
        tenant = Tenant.objects.create(name=slug, slug=slug[:64])
        machine = Machine.objects.create(tenant=tenant, code="M1", name="M1")
        post = Post.objects.create(tenant=tenant, machine=machine, code="P1", name="P1")
        model_type = ModelType.objects.create(tenant=tenant, code="MT1", name="MT1")
        started = time.monotonic()
        with rollup.paused(), connection.cursor() as cursor:
            cursor.execute(
                """
                INSERT INTO jobs_job (tenant_id, public_id, external_id, model_type_id, machine_id, post_id, status,
                                      progress, created_at, started_at, updated_at, event_seq)
                SELECT %s, gen_random_uuid(), 'J' || i, %s, %s, %s, 'running', i %% 100,
                       now() - interval '1 day', timestamp '2026-11-30 08:00:00+00', now(), 0
                FROM generate_series(1, %s) AS i
                """,
                [tenant.pk, model_type.pk, machine.pk, post.pk, n],
            )
        self.stdout.write(f"setup: {n} jobs in {time.monotonic() - started:.1f} s (rollup triggers paused)")
        return tenant

    @staticmethod
    def _time_phases() -> dict[str, list[float]]:
        """Wrap each phase's function with a timer (for this process only); returns name -> durations."""
        from apps.recon import loading, matching

        phases: dict[str, list[float]] = {}
        targets = [
            ("sha256 of the file", loading, "sha256_of"),
            ("parse + validate + COPY into staging", loading, "load"),
            ("portal snapshot (INSERT ... SELECT)", matching, "snapshot_portal"),
            ("compare + breaks upserted (one statement)", services, "_compare_and_write_in_database"),
            ("auto-clear (one UPDATE)", services, "_clear_the_gone"),
            ("audit entry of the run", services, "record"),
        ]
        for name, module, attr in targets:
            original = getattr(module, attr)

            def timed(*args, _original=original, _name=name, **kwargs):
                t = time.monotonic()
                try:
                    return _original(*args, **kwargs)
                finally:
                    phases.setdefault(_name, []).append(time.monotonic() - t)

            setattr(module, attr, timed)
        return phases

    def handle(self, *args, rows, **options):
        if connection.vendor != "postgresql":
            raise CommandError("bench_recon measures PostgreSQL; set DATABASE_URL")
        n = rows
        tenant = self._tenant_with_jobs(n, new=options["new_jobs"])
        if options["setup_only"]:
            return
        # One profile per tenant: an earlier run's breaks are deleted so that this run's first file creates all.
        profile, _created = IntegrationProfile.objects.get_or_create(tenant=tenant, defaults={"name": tenant.slug})
        # Plain SQL: an ORM delete of 50 000 breaks (or 2M staged rows) collects them in memory first.
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM recon_breaks WHERE profile_id = %s", [profile.pk])
        self.stdout.write(f"uptime: {Path('/proc/loadavg').read_text().split()[:3]}")
        step = 100  # every 100th row carries one kind of difference (1 % each)
        path = Path(tempfile.mkdtemp(prefix="bench-recon-")) / "export.csv"
        with path.open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(["external_id", "status", "progress", "started_at"])
            for i in range(1, n + 1):
                if i % step == 1:
                    continue  # MISSING_IN_ERP
                status, progress = "running", i % 100
                if i % step == 2:
                    status = "TAMAM"  # STATUS_MISMATCH
                elif i % step == 3:
                    progress = (progress + 10) % 100  # FIELD_MISMATCH
                writer.writerow([f"J{i}", status, progress, "2026-11-30T08:00:00Z"])
                if i % step == 4:
                    writer.writerow([f"J{i}", status, progress, "2026-11-30T08:00:00Z"])  # DUPLICATE_KEY
                if i % step == 5:
                    writer.writerow([f"X{i}", "queued", 0, ""])  # MISSING_IN_PORTAL
        size = path.stat().st_size
        rss_before = _rss_mb()
        phases = self._time_phases()

        t0 = time.monotonic()
        with path.open("rb") as stream:
            entry = services.register_file(
                stream, name=path.name, profile=profile, source=FileSource.COMMAND, force=True
            )
        t1 = time.monotonic()
        first = services.run(entry)
        t2 = time.monotonic()
        self.stdout.write(f"first run counts: {first.counts}")
        with path.open("rb") as stream:
            again = services.register_file(
                stream, name=path.name, profile=profile, source=FileSource.COMMAND, force=True
            )
        t3 = time.monotonic()
        second = services.run(again)
        t4 = time.monotonic()
        rss_after = _rss_mb()

        # The limit: the same FULL OUTER JOIN in plain SQL over the tables already staged by the first run.
        with connection.cursor() as cursor:
            j0 = time.monotonic()
            cursor.execute(
                """
                SELECT count(*) FROM (SELECT * FROM recon_staged_row WHERE file_id = %s) e
                FULL OUTER JOIN (SELECT * FROM recon_portal_row WHERE run_id = %s) p ON e.key = p.key
                WHERE e.key IS NULL OR p.key IS NULL OR e.status <> p.status OR abs(e.progress - p.progress) > 2
                   OR (e.started_at IS NULL) <> (p.started_at IS NULL) OR abs(e.started_at - p.started_at) > 300
                """,
                [entry.pk, first.pk],
            )
            differing = cursor.fetchone()[0]
            j1 = time.monotonic()
            cursor.execute(
                "SELECT count(*) FROM (SELECT key FROM recon_staged_row WHERE file_id = %s) e "
                "FULL OUTER JOIN (SELECT key FROM recon_portal_row WHERE run_id = %s) p ON e.key = p.key",
                [entry.pk, first.pk],
            )
            cursor.fetchone()
            j2 = time.monotonic()
            # What a dataframe engine (Polars) would pay first: both sides out of the database into Python.
            cursor.execute("SELECT * FROM recon_staged_row WHERE file_id = %s", [entry.pk])
            pulled = len(cursor.fetchall())
            cursor.execute("SELECT * FROM recon_portal_row WHERE run_id = %s", [first.pk])
            pulled += len(cursor.fetchall())
            j3 = time.monotonic()
        c0 = time.monotonic()
        from apps.recon import matching

        found = matching.compare(first, first.config.data, columns=entry.columns)
        c1 = time.monotonic()

        rows_out = [
            ("file", f"{entry.row_count} rows, {size / 1e6:.1f} MB"),
            ("load: sha256 + parse + validate + COPY (first file)", f"{(t1 - t0) * 1000:.0f} ms"),
            ("run: snapshot + join + breaks created", f"{(t2 - t1) * 1000:.0f} ms ({first.duration_ms} ms inside)"),
            ("end to end, first file (load + run)", f"{(t2 - t0) * 1000:.0f} ms"),
            ("load, forced duplicate", f"{(t3 - t2) * 1000:.0f} ms"),
            ("run again: breaks updated", f"{(t4 - t3) * 1000:.0f} ms"),
            ("end to end, second file", f"{(t4 - t2) * 1000:.0f} ms"),
            (
                "plain SQL: the same FULL OUTER JOIN, count of differing rows",
                f"{(j1 - j0) * 1000:.0f} ms ({differing} rows)",
            ),
            ("plain SQL: bare FULL OUTER JOIN on the key, count", f"{(j2 - j1) * 1000:.0f} ms"),
            (
                "both sides fetched into Python (what Polars would start with)",
                f"{(j3 - j2) * 1000:.0f} ms ({pulled} rows)",
            ),
            ("compare() alone (the run's join, rows into Python)", f"{(c1 - c0) * 1000:.0f} ms ({len(found)} breaks)"),
            ("peak RSS before / after", f"{rss_before:.0f} MB / {rss_after:.0f} MB"),
        ]
        for name, spent in phases.items():
            rows_out.append((f"phase, both runs summed: {name}", " + ".join(f"{t * 1000:.0f}" for t in spent) + " ms"))
        for label, value in rows_out:
            self.stdout.write(f"| {label} | {value} |")
        self.stdout.write(f"second run cleared {second.cleared_count}, counts {second.counts}")
        path.unlink()
        if not options["keep"]:
            with connection.cursor() as cursor:
                cursor.execute("DELETE FROM recon_staged_row WHERE file_id IN (%s, %s)", [entry.pk, again.pk])
                cursor.execute("DELETE FROM recon_portal_row WHERE run_id IN (%s, %s)", [first.pk, second.pk])
