"""Benchmarks for docs/benchmarks.md: audit appends against plain INSERTs, and verification against sha256.

PostgreSQL only; writes to the database it is pointed at (use a scratch one).
"""

import multiprocessing
import time

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, connections, transaction

from apps.audit import hashing, selectors, services
from apps.audit.models import AuditLog
from apps.audit.verification import verify_entries

PLAIN_TABLE = "bench_plain_inserts"


def _plain_writer(count):
    connections.close_all()
    with connection.cursor() as cursor:
        for i in range(count):
            with transaction.atomic():
                cursor.execute(
                    f"INSERT INTO {PLAIN_TABLE} (ts, actor_type, actor_id, action, object_type, object_id, payload, "  # noqa: S608
                    "payload_sha256, request_id, client_ip, version, record_sha256, prev_hash, chain_hash, "
                    "external_timestamp) VALUES (now(), 'system', '', 'bench', 'bench', %s, '{\"i\": 1}', %s, '', '', "
                    "1, '', '', '', '')",
                    [str(i), "0" * 64],
                )
    connections.close_all()


def _audit_writer(count):
    connections.close_all()
    for i in range(count):
        with transaction.atomic():
            services.record(None, "bench", None, {"i": i}, object_type="bench", object_id=str(i))
    connections.close_all()


def _sealer_loop(stop):
    connections.close_all()
    while not stop.is_set():
        if not services.seal_pending():
            time.sleep(0.05)
    connections.close_all()


def _run(writer, writers, per_writer, *, with_sealer=False):
    """Seconds until every writer is done (and, with the sealer running beside them, everything is sealed)."""
    connections.close_all()
    context = multiprocessing.get_context("fork")
    stop = context.Event()
    sealer = context.Process(target=_sealer_loop, args=(stop,)) if with_sealer else None
    started = time.perf_counter()
    if sealer:
        sealer.start()
    with context.Pool(writers) as pool:
        pool.map(writer, [per_writer] * writers)
    if sealer:
        stop.set()
        sealer.join()
        services.seal_pending()  # whatever the last loop had not picked up yet
    return time.perf_counter() - started


class Command(BaseCommand):
    help = "Measure audit append and verification rates on PostgreSQL (see docs/benchmarks.md)."

    def add_arguments(self, parser):
        parser.add_argument("--per-writer", type=int, default=2000)
        parser.add_argument("--verify-entries", type=int, default=0, help="also verify a chain of this many entries")
        parser.add_argument("--offline", action="store_true", help="also export it and run the offline verifier")
        parser.add_argument(
            "--fast-seed", action="store_true", help="append the verification chain's entries already sealed, by "
            "COPY (hashed here as the sealer hashes them; minutes instead of half an hour for 1 000 000)",
        )  # fmt: skip

    def handle(self, *args, per_writer, verify_entries, offline=False, fast_seed=False, **options):
        self.offline, self.fast_seed = offline, fast_seed
        if connection.vendor != "postgresql":
            raise CommandError("bench_audit needs PostgreSQL (set DATABASE_URL)")
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {PLAIN_TABLE}")
            cursor.execute(
                f"CREATE TABLE {PLAIN_TABLE} (LIKE audit_logs INCLUDING DEFAULTS INCLUDING INDEXES INCLUDING IDENTITY)"
            )
        for writers in (1, 8):
            plain = _run(_plain_writer, writers, per_writer)
            total = _run(_audit_writer, writers, per_writer, with_sealer=True)
            n = writers * per_writer
            assert AuditLog.objects.filter(seq__isnull=True).count() == 0
            self.stdout.write(
                f"writers={writers} rows={n} plain={n / plain:,.0f}/s audit(sealed)={n / total:,.0f}/s "
                f"ratio={(n / total) / (n / plain):.0%}"
            )
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE {PLAIN_TABLE}")
        if verify_entries:
            self._bench_verify(verify_entries)

    def _bench_verify(self, target):
        from django.conf import settings

        from apps.audit.db_verification import verify_database

        if not settings.AUDIT_SIGNING_KEY and not settings.DEBUG:
            raise CommandError("set AUDIT_SIGNING_KEY (or DJANGO_DEBUG=true for a local key)")
        while (have := AuditLog.objects.filter(seq__isnull=False).count()) < target:
            chunk = min(100_000, target - have)
            self.stdout.write(f"appending {chunk} entries (have {have}) ...")
            if self.fast_seed:
                _append_sealed(chunk)
                services.make_checkpoint(force=True)
                continue
            AuditLog.objects.bulk_create(
                [
                    AuditLog(ts=hashing_now(), actor_type="system", action="bench.verify", payload={"i": i},
                             payload_sha256=hashing.payload_sha256({"i": i}), object_type="bench", object_id=str(i),
                             payload_canonical=hashing.canonical_json({"i": i}).decode())
                    for i in range(chunk)
                ],
                batch_size=10000,
            )  # fmt: skip
            services.seal_pending(batch=10000)  # 5 parameters a row; PostgreSQL takes at most 65535
            services.make_checkpoint(force=True)
        public_key = services.signing_key().public_key()
        default = f"default ({settings.AUDIT_VERIFY_CONNECTIONS} connections)"
        runs = {
            default: lambda: verify_database(public_key=public_key),
            "1 connection": lambda: verify_database(public_key=public_key, db_connections=1),
            "2 processes": lambda: verify_database(public_key=public_key, processes=2),
            "previous default (prepared rows, hashed in Python)": lambda: _prepared_rows_walk(public_key),
        }
        results = {}
        for name, run in runs.items():
            started = time.perf_counter()
            report = run()
            results[name] = (report, time.perf_counter() - started)
        entries = list(selectors.chain_entries())
        started = time.perf_counter()
        verify_entries(iter(entries))
        in_memory = time.perf_counter() - started
        bodies = [hashing.record_bytes(e) for e in entries]
        started = time.perf_counter()
        for body in bodies:
            hashing.sha256_hex(body)
        limit = time.perf_counter() - started
        started = time.perf_counter()
        for e in entries:
            hashing.record_bytes(e)
            hashing.canonical_json_fast(e["payload"])
        canonical_alone = time.perf_counter() - started
        n = len(entries)
        for name, (report, seconds) in results.items():
            self.stdout.write(
                f"verify {name}: n={report.checked} ok={report.ok} "
                f"checkpoints={report.checkpoints_checked} {n / seconds:,.0f}/s ({seconds:.2f} s)"
            )
        self.stdout.write(f"in_memory={n / in_memory:,.0f}/s ({in_memory:.1f} s) sha256_limit={n / limit:,.0f}/s "
                          f"({limit:.2f} s) canonical_json_alone={canonical_alone:.2f} s")  # fmt: skip
        if self.offline:
            self._bench_offline(public_key, n)

    def _bench_offline(self, public_key, n):
        """The offline verifier (`python -m apps.audit.verify`, a process of its own) over an export of the chain."""
        import subprocess
        import sys
        import tempfile

        from django.conf import settings
        from django.core.management import call_command

        from apps.audit import signatures

        with tempfile.TemporaryDirectory() as tmp:
            export, key = f"{tmp}/audit.jsonl", f"{tmp}/public.pem"
            with open(key, "w", encoding="utf-8") as fh:
                fh.write(signatures.public_pem(public_key))
            started = time.perf_counter()
            call_command("export_audit", output=export, stderr=open(f"{tmp}/err", "w"))  # noqa: SIM115
            exported = time.perf_counter() - started
            started = time.perf_counter()
            done = subprocess.run(  # noqa: S603 - our own verifier on our own file
                [sys.executable, "-m", "apps.audit.verify", export, "--public-key", key],
                capture_output=True, text=True, cwd=settings.BASE_DIR,
            )  # fmt: skip
            offline = time.perf_counter() - started
        self.stdout.write(
            f"offline verifier: {done.stdout.strip()} exit={done.returncode} {n / offline:,.0f}/s ({offline:.1f} s); "
            f"export_audit wrote the file in {exported:.1f} s"
        )


def _append_sealed(count):
    """`count` bench entries after the chain's head, sealed as services.seal_pending seals them (same fields,
    same hashes), written by one COPY: the append-only triggers guard UPDATE and DELETE, not INSERT."""
    from django.utils import timezone

    head = AuditLog.objects.filter(seq__isnull=False).order_by("-seq").values("seq", "chain_hash").first()
    seq, prev = (head["seq"], head["chain_hash"]) if head else (0, hashing.GENESIS_HASH)
    now = timezone.now()
    ts = hashing.format_ts(now)
    columns = (
        "ts", "actor_type", "actor_id", "action", "object_type", "object_id", "payload", "payload_sha256",
        "payload_canonical", "tenant_id", "request_id", "client_ip", "version", "seq", "record_sha256", "prev_hash",
        "chain_hash", "external_timestamp", "sealed_at",
    )  # fmt: skip
    with transaction.atomic(), connection.cursor() as cursor:
        raw = cursor.cursor
        with raw.copy(f"COPY {AuditLog._meta.db_table} ({', '.join(columns)}) FROM STDIN") as copy:
            for i in range(count):
                seq += 1
                canonical = hashing.canonical_json({"i": i}).decode()
                fields = {
                    "seq": seq, "ts": ts, "actor_type": "system", "actor_id": "", "action": "bench.verify",
                    "object_type": "bench", "object_id": str(i), "payload_sha256": hashing.sha256_hex(
                        canonical.encode()), "tenant_id": None, "request_id": "", "client_ip": "",
                    "version": hashing.SCHEMA_VERSION,
                }  # fmt: skip
                record = hashing.record_sha256(fields)
                chain = hashing.chain_hash(prev, record)
                copy.write_row((
                    now, "system", "", "bench.verify", "bench", str(i), canonical, fields["payload_sha256"],
                    canonical, None, "", "", hashing.SCHEMA_VERSION, seq, record, prev, chain, "", now,
                ))  # fmt: skip
                prev = chain


def _prepared_rows_walk(public_key):
    """The database verifier as it was before the chain was checked in PostgreSQL: rows prepared by the database,
    every hash computed in Python (selectors.verification_rows), one process and one connection."""
    from apps.audit.sql_verification import prepared_rows

    checkpoints = selectors.checkpoints()
    return verify_entries((), chunks=prepared_rows(1, None), checkpoints=checkpoints, public_key=public_key)


def hashing_now():
    from django.utils import timezone

    return timezone.now()
