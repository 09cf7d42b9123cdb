"""Benchmarks for docs/benchmarks.md: job status changes from commit to the mock ERP's receipt.

PostgreSQL + Redis only; writes to the database it is pointed at (use a scratch one). Starts the mock
ERP and N Celery workers (concurrency 1 each) as real processes, then measures
  1. sustained events/s: a burst of status changes, from the first commit to the last receipt;
  2. P50/P95 publish latency at a steady rate (commit -> the ERP's receipt);
  3. the limit: the same signed POSTs sent by a plain loop, one after the other.
"""

import contextlib
import json
import multiprocessing
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, connections, transaction
from django.utils import timezone

from apps.accounts.models import Tenant
from apps.catalog.models import Machine, ModelType, Post
from apps.erp import keyring, signing
from apps.erp.models import ErpSync, IntegrationProfile, KeyState, SyncStatus
from apps.events.models import OutboxEvent
from apps.jobs import services as jobs
from apps.jobs.models import Job, JobStatus, StatusSource

ROOT = Path(settings.BASE_DIR)
SECRET = "bench-secret-0123456789abcdef"


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _job_seq(record):
    meta = json.loads(record["body"])["meta"]
    return meta["portal_job_id"], meta["seq"]


def _order_violations(log) -> int:
    """Jobs whose acknowledged `meta.seq` went backwards at the receiver (a repeat of the same seq is fine)."""
    last, broken = {}, set()
    for job, seq in log:
        if seq < last.get(job, 0):
            broken.add(job)
        last[job] = max(seq, last.get(job, 0))
    return len(broken)


def _percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _emit(job, status):
    """One status change through the real service; returns ((job id, its event's seq), the commit time)."""
    job = jobs.change_status(job, status)
    return (str(job.pk), job.event_seq), time.time()


def _emit_outbox(job, status):
    """`--producer outbox`: the same outbox event as change_status (payload, schema check, after-commit
    wake-up) and the job's status and seq in one UPDATE, without the audit entry and status history row,
    which the ERP path never reads. It costs about a third of change_status's CPU, so 200 events/s can be
    offered on 2 cores beside the workers (change_status alone at 200/s would need more than one core).
    """
    at = timezone.now()
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {Job._meta.db_table} SET status = %s, progress = %s, event_seq = event_seq + 1,"  # noqa: S608
                " updated_at = %s WHERE id = %s RETURNING event_seq",
                [str(status), 100 if status == JobStatus.SUCCEEDED else job.progress, at, job.pk],
            )
            (seq,) = cursor.fetchone()
        from_status, job.status, job.event_seq = job.status, status, seq
        job.progress = 100 if status == JobStatus.SUCCEEDED else job.progress
        jobs._emit_status_changed(job, from_status, actor=None, source=StatusSource.SYSTEM, reason="", at=at)
    return (str(job.pk), seq), time.time()


EMITTERS = {"change_status": _emit, "outbox": _emit_outbox}


def _by_event_id(emitted: dict) -> dict:
    """{(job id, seq): t} -> {event id (the Idempotency-Key): t}, in one query after the load (not in it)."""
    job_ids = {job_id for job_id, _seq in emitted}
    keyed = {}
    for event_id, job_id, seq in OutboxEvent.objects.filter(aggregate_id__in=job_ids).values_list(
        "pk", "aggregate_id", "aggregate_seq"
    ):
        if (job_id, seq) in emitted:
            keyed[str(event_id)] = emitted[(job_id, seq)]
    return keyed


class MockLog:
    """The mock ERP's request file (`--log`), read incrementally: receipts and acknowledged (job, seq)."""

    def __init__(self, path):
        self.path, self.offset, self.received, self.acked = path, 0, {}, []

    def read(self) -> dict:
        if self.path.exists():
            with self.path.open("rb") as f:
                f.seek(self.offset)
                chunk = f.read()
            complete = chunk[: chunk.rfind(b"\n") + 1]
            self.offset += len(complete)
            for line in complete.splitlines():
                record = json.loads(line)
                self.received.setdefault(record["headers"]["Idempotency-Key"], record["received_at"])
                if 200 <= record["status"] < 300:
                    self.acked.append(_job_seq(record))
        return self.received


class Producers:
    """`count` producer processes, each with its own database connection, committing their share of
    `changes` on one fixed schedule: change i is due at `started + i / rate`.

    Threads of one process (the earlier producer) shared one interpreter lock and reached only 45-67
    changes/s on the loaded machine, so "200 events/s" was never offered. A job's changes stay in one
    process, in order. `join()` returns {event id: commit time} of every change.
    """

    def __init__(self, changes, rate, count, emit=_emit):
        self.started = time.time() + 1.0  # every process is up before the first change is due
        self.lag = 0.0
        # Forked children must not share the parent's sockets: close them here, each child opens its own.
        connections.close_all()
        context = multiprocessing.get_context("fork")
        self.queue = context.Queue()
        self.processes = [
            context.Process(target=self._run, args=(changes, rate, count, n, emit), daemon=True) for n in range(count)
        ]
        for process in self.processes:
            process.start()

    def _run(self, changes, rate, count, offset, emit):
        emitted, lag = {}, 0.0
        try:
            for i, (job, status) in enumerate(changes):
                if (i // 2) % count != offset:
                    continue
                due = self.started + i / rate
                wait = due - time.time()
                if wait > 0:
                    time.sleep(wait)
                else:
                    lag = max(lag, -wait)
                key, committed = emit(job, status)
                emitted[key] = committed
        finally:
            connections.close_all()
            self.queue.put((emitted, lag))

    def join(self) -> dict:
        emitted = {}
        for _ in self.processes:
            part, lag = self.queue.get()
            emitted.update(part)
            self.lag = max(self.lag, lag)
        for process in self.processes:
            process.join()
        return _by_event_id(emitted)


class Command(BaseCommand):
    help = "Benchmark ERP delivery (PostgreSQL + Redis, scratch database): throughput, latency at a steady rate."

    def add_arguments(self, parser):
        parser.add_argument("--workers", type=int, default=2)
        parser.add_argument("--concurrency", type=int, default=1, help="Celery worker processes per worker")
        parser.add_argument("--burst", type=int, default=2000, help="status changes in the throughput run")
        parser.add_argument("--rate", type=float, default=50.0, help="events/s of the latency run")
        parser.add_argument("--seconds", type=float, default=30.0, help="length of the latency run")
        parser.add_argument(
            "--producers", type=int, default=4, help="producer processes (each its own connection) of the steady load"
        )
        parser.add_argument(
            "--producer",
            choices=sorted(EMITTERS),
            default="change_status",
            help="what a change of the steady load commits (outbox: the event alone, see _emit_outbox)",
        )
        parser.add_argument(
            "--outage",
            type=float,
            default=0.0,
            help="drain run instead: the ERP refuses connections for this many seconds during a steady load",
        )
        parser.add_argument("--outage-at", type=float, default=10.0, help="seconds of steady load before the outage")
        parser.add_argument("--after", type=float, default=90.0, help="seconds of steady load after the outage")
        parser.add_argument(
            "--default-setup",
            action="store_true",
            help="the zero-setup run (SQLite, kombu's filesystem broker, one worker -c 2): latency run only",
        )

    def handle(self, *args, **options):
        if options["default_setup"]:
            if connection.vendor != "sqlite" or not settings.CELERY_BROKER_URL.startswith("filesystem://"):
                raise CommandError(
                    "--default-setup measures SQLite with the filesystem broker (no DATABASE_URL, REDIS_URL)"
                )
            return self._default_setup(options)
        if connection.vendor != "postgresql" or not settings.REDIS_URL or settings.CELERY_TASK_ALWAYS_EAGER:
            raise CommandError("bench_erp needs PostgreSQL (DATABASE_URL), Redis (REDIS_URL) and real workers")
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        procs = [self._start([sys.executable, "-m", "apps.erp.mock_server", "--port", str(port), "--secret", SECRET])]
        try:
            self._wait(url + "/erp/v1/health")
            make_job = self._fixtures(url)
            # Purge leftovers of earlier runs so the workers start on an empty queue.
            subprocess.run([sys.executable, "-m", "celery", "-A", "config", "purge", "-f"], cwd=ROOT, check=True,
                           capture_output=True)  # fmt: skip
            # The burst is committed before any worker runs, so the drain measures the pipeline, not the producer.
            if options["outage"]:
                for i in range(options["workers"]):
                    procs.append(self._start([sys.executable, "-m", "celery", "-A", "config", "worker",
                                              "-c", str(options["concurrency"]), "-n", f"bench{i}@%h", "-l",
                                              "WARNING", "--without-gossip", "--without-mingle",
                                              "--without-heartbeat"]))  # fmt: skip
                result = self._outage_run(port, procs, make_job, options)
                self.stdout.write(json.dumps({"workers": options["workers"], **result}, indent=2))
                return
            emitted, produced = self._produce_burst(make_job, options["burst"])
            for i in range(options["workers"]):
                procs.append(self._start([sys.executable, "-m", "celery", "-A", "config", "worker",
                                          "-c", str(options["concurrency"]), "-n", f"bench{i}@%h", "-l", "WARNING",
                                          "--without-gossip", "--without-mingle", "--without-heartbeat"]))  # fmt: skip
            burst = {"burst_producer_events_per_s": produced, **self._drain(url, emitted)}
            steady = self._steady(
                url, make_job, options["rate"], options["seconds"], options["producers"], EMITTERS[options["producer"]]
            )
            plain = self._plain_loop(url, options["burst"])
        finally:
            self._stop(procs)
        self.stdout.write(
            json.dumps(
                {"workers": options["workers"], "concurrency": options["concurrency"], **burst, **steady, **plain},
                indent=2,
            )
        )

    def _outage_run(self, port, procs, make_job, options):
        """Steady load; after `outage_at` s the ERP is gone (connections refused) for `outage` s, then back.

        Beat is simulated (deliver_due and relay_outbox every OUTBOX_SWEEP_SECONDS, the re-drive every
        minute). Reports the backlog when the ERP came back, how long it took to drain (until every event
        committed before it came back was received), and the longest wait of any event.
        """
        from config.celery import app

        url = f"http://127.0.0.1:{port}"
        rate, before, outage, after = options["rate"], options["outage_at"], options["outage"], options["after"]
        changes = self._changes(make_job, int(rate * (before + outage + after)))
        # The mock appends every request to a file that outlives its restart: nothing received is forgotten.
        mock_log = MockLog(Path(tempfile.mkdtemp(prefix="bench-erp-")) / "requests.jsonl")
        mock_argv = [sys.executable, "-m", "apps.erp.mock_server", "--port", str(port), "--secret", SECRET,
                     "--log", str(mock_log.path)]  # fmt: skip
        self._stop(procs[:1])
        procs[0] = self._start(mock_argv)
        self._wait(url + "/erp/v1/health")
        producer = Producers(changes, rate, options["producers"], EMITTERS[options["producer"]])
        stop = threading.Event()

        def beat():
            tick = 0
            while not stop.wait(settings.OUTBOX_SWEEP_SECONDS):
                tick += 1
                app.send_task("apps.erp.tasks.deliver_due")
                app.send_task("apps.events.tasks.relay_outbox")
                if tick % max(1, int(60 / settings.OUTBOX_SWEEP_SECONDS)) == 0:
                    app.send_task("apps.erp.tasks.redrive_after_outage")

        started = producer.started
        beat_thread = threading.Thread(target=beat)
        beat_thread.start()
        time.sleep(max(0.0, started + before - time.time()))
        mock = procs[0]
        mock.send_signal(signal.SIGTERM)
        mock.wait(10)
        time.sleep(max(0.0, started + before + outage - time.time()))
        procs[0] = self._start(mock_argv)
        self._wait(url + "/erp/v1/health")
        back_at = time.time()
        received = dict(mock_log.read())
        emitted = producer.join()
        waiting = {k for k, t in emitted.items() if t < back_at} - {k for k, t in received.items() if t < back_at}
        deadline = time.time() + 900
        while time.time() < deadline:
            now_received = mock_log.read()
            if all(k in now_received for k in emitted):
                break
            time.sleep(3)  # receipt times come from the mock: polling less often costs no precision
        stop.set()
        beat_thread.join()
        missing = [k for k in emitted if k not in now_received]
        drained_at = max((now_received[k] for k in waiting if k in now_received), default=back_at)
        latencies = [now_received[k] - t for k, t in emitted.items() if k in now_received]
        return {
            "outage_rate": rate,
            "outage_seconds": outage,
            "events": len(emitted),
            "missing": len(missing),
            "jobs_out_of_order": _order_violations(mock_log.acked),
            "backlog_when_erp_returned": len(waiting),
            "drain_seconds": round(drained_at - back_at, 1),
            "drain_events_per_s": round(len(waiting) / max(0.001, drained_at - back_at), 1),
            "load_continued_seconds_after_return": round(started + before + outage + after - back_at, 1),
            "max_wait_s": round(max(latencies), 1),
            "p95_wait_after_drain_ms": round(
                _percentile([now_received[k] - t for k, t in emitted.items() if t > drained_at + 1] or [0], 0.95)
                * 1000,
                1,
            ),
        }

    def _default_setup(self, options):
        """`make run`'s shape: one worker with two processes, SQLite, the filesystem broker; latency only."""
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        procs = [self._start([sys.executable, "-m", "apps.erp.mock_server", "--port", str(port), "--secret", SECRET])]
        try:
            self._wait(url + "/erp/v1/health")
            make_job = self._fixtures(url)
            procs.append(self._start([sys.executable, "-m", "celery", "-A", "config", "worker", "-c", "2",
                                      "-n", "benchdefault@%h", "-l", "WARNING", "--without-gossip",
                                      "--without-mingle", "--without-heartbeat"]))  # fmt: skip
            time.sleep(5)  # the worker is up before the clock starts
            steady = self._steady(url, make_job, options["rate"], options["seconds"], producers=1)
        finally:
            self._stop(procs)
        self.stdout.write(
            json.dumps({"setup": "default (SQLite, filesystem broker, 1 worker -c 2)", **steady}, indent=2)
        )

    def _stop(self, procs):
        for p in reversed(procs):
            p.send_signal(signal.SIGTERM)
        for p in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(20)
            # Each process leads its own group: a worker's pool children go with it.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)

    def _start(self, argv):
        env = {**os.environ, "CELERY_TASK_ALWAYS_EAGER": "false"}
        # The benchmark's mock ERP listens on loopback, which the outbound-URL guard refuses unless allowlisted.
        env["ERP_ALLOWED_HOSTS"] = ",".join(filter(None, [os.environ.get("ERP_ALLOWED_HOSTS", ""), "127.0.0.1"]))
        # Our own interpreter running our own modules: no untrusted input.
        return subprocess.Popen(  # noqa: S603
            argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )

    def _wait(self, url):
        for _ in range(200):
            try:
                if requests.get(url, timeout=1).ok:
                    return
            except requests.ConnectionError:
                time.sleep(0.05)
        raise CommandError(f"{url} did not come up")

    def _fixtures(self, url):
        tenant, _ = Tenant.objects.get_or_create(slug="bench-erp", defaults={"name": "Bench ERP"})
        profile, _ = IntegrationProfile.objects.update_or_create(
            tenant=tenant, defaults={"name": "bench", "base_url": url, "paused_at": None}
        )
        if not profile.keys.filter(state=KeyState.CURRENT).exists():
            keyring.add_key(profile, SECRET, state=KeyState.CURRENT)
        machine, _ = Machine.objects.get_or_create(tenant=tenant, code="M-BENCH", defaults={"name": "Bench"})
        post, _ = Post.objects.get_or_create(tenant=tenant, machine=machine, code="P-BENCH", defaults={"name": "Bench"})
        model_type, _ = ModelType.objects.get_or_create(tenant=tenant, code="MT-BENCH", defaults={"name": "Bench"})

        def make_job():
            return Job.objects.create(tenant=tenant, machine=machine, post=post, model_type=model_type)

        return make_job

    def _received(self, url, log=None):
        """{Idempotency-Key: first receipt time}; `log` collects (job, seq) of each acknowledged receipt, in order."""
        records = requests.get(url + "/_mock/requests", timeout=60).json()
        if log is not None:
            log.extend(_job_seq(r) for r in records if 200 <= r["status"] < 300)
        received = {}
        for r in records:
            received.setdefault(r["headers"]["Idempotency-Key"], r["received_at"])
        return received

    def _wait_for(self, url, keys, timeout=600):
        deadline = time.time() + timeout
        while time.time() < deadline:
            received = self._received(url)
            if all(k in received for k in keys):
                return received
            time.sleep(0.2)
        raise CommandError(f"only {sum(k in self._received(url) for k in keys)} of {len(keys)} events arrived")

    def _changes(self, make_job, count):
        """`count` status changes, two per job (running, then succeeded), so half wait for their job's first."""
        changes = []
        for _ in range(count // 2):
            job = make_job()
            changes += [(job, JobStatus.RUNNING), (job, JobStatus.SUCCEEDED)]
        return changes

    def _produce_burst(self, make_job, count):
        changes = self._changes(make_job, count)
        started = time.time()
        emitted = _by_event_id(dict(_emit(job, status) for job, status in changes))
        return emitted, round(len(changes) / (time.time() - started), 1)

    def _drain(self, url, emitted):
        """Sustained rate while the workers work off the backlog: from the first receipt to the last."""
        received = self._wait_for(url, emitted)
        times = sorted(received[k] for k in emitted)
        acked = ErpSync.objects.filter(idempotency_key__in=list(emitted), status=SyncStatus.ACKED).count()
        requests.post(url + "/_mock/reset", timeout=10)
        return {
            "burst_events": len(emitted),
            "burst_events_per_s": round((len(times) - 1) / (times[-1] - times[0]), 1),
            "burst_acked": acked,
        }

    def _steady(self, url, make_job, rate, seconds, producers=4, emit=_emit):
        """`producers` processes, each committing its share of the changes on a fixed schedule."""
        changes = self._changes(make_job, int(rate * seconds))
        total = len(changes)
        producer = Producers(changes, rate, producers, emit)
        started = producer.started
        emitted = producer.join()
        received = self._wait_for(url, emitted)
        log = []
        self._received(url, log)
        latencies = [received[k] - t for k, t in emitted.items()]
        if os.environ.get("BENCH_ERP_DUMP"):
            ordered = sorted(emitted.items(), key=lambda item: item[1])
            lines = [f"{t - started:.3f} {received[k] - t:.3f}" for k, t in ordered]
            Path(os.environ["BENCH_ERP_DUMP"]).write_text("\n".join(lines))
        requests.post(url + "/_mock/reset", timeout=10)
        return {
            "steady_rate": rate,
            "steady_events": total,
            "steady_achieved_rate": round(total / (max(emitted.values()) - started), 1),
            "steady_producers": producers,
            "steady_producer": emit.__name__,
            "steady_producer_max_lag_ms": round(producer.lag * 1000, 1),
            "latency_p50_ms": round(_percentile(latencies, 0.50) * 1000, 1),
            "latency_p95_ms": round(_percentile(latencies, 0.95) * 1000, 1),
            "latency_max_ms": round(max(latencies) * 1000, 1),
            "latency_mean_ms": round(statistics.mean(latencies) * 1000, 1),
            "steady_jobs_out_of_order": _order_violations(log),
        }

    def _plain_loop(self, url, count):
        session = requests.Session()
        body = json.dumps({"job_id": "J", "status": "running", "progress": 0, "updated_at": "2026-11-23T00:00:00Z"})
        started = time.perf_counter()
        for i in range(count):
            data = body.encode()
            headers = {"Content-Type": "application/json", "X-Signature": signing.x_signature(SECRET, data),
                       "X-Request-Id": str(i), "Idempotency-Key": f"plain-{i}"}  # fmt: skip
            session.post(url + "/erp/v1/jobs/update", data=data, headers=headers, timeout=10).raise_for_status()
        elapsed = time.perf_counter() - started
        return {"plain_loop_posts_per_s": round(count / elapsed, 1)}
