"""What the HTTP benchmarks of the ERP inbound path share (`manage.py bench_inbound`, `bench_request_metrics`):
the bench tenant and profile, signed progress requests, an asyncio load generator on loopback, and the gunicorn
server (apps.erp.bench_wsgi) they drive. Benchmark support only: nothing in the application imports it.
"""

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from apps.accounts.models import Tenant
from apps.erp import inbound_services, keyring, signing
from apps.erp.bench_urls import BARE_TABLE
from apps.erp.models import ErpKey, IntegrationProfile, KeyState
from apps.jobs import services as job_services
from apps.jobs.models import Job, JobStatus

TOKEN = "bench-inbound-token-0123456789abcdef"
SECRET = "bench-current-secret"
INBOUND_PATH = "/api/v1/erp/inbound/job/progress"
BARE_PATH = "/bench/bare-insert"


def prepare(jobs: int) -> list[str]:
    """A bench tenant with `jobs` running jobs, a profile accepting 127.0.0.1 with TOKEN and SECRET."""
    from apps.catalog.models import Machine, ModelType, Post

    tenant, _created = Tenant.objects.get_or_create(slug="bench-inbound", defaults={"name": "Bench inbound"})
    machine, _ = Machine.objects.get_or_create(tenant=tenant, code="BM1", defaults={"name": "Bench machine"})
    post, _ = Post.objects.get_or_create(tenant=tenant, machine=machine, code="BP1", defaults={"name": "Bench post"})
    model_type, _ = ModelType.objects.get_or_create(tenant=tenant, code="BT1", defaults={"name": "Bench type"})
    have = Job.objects.filter(tenant=tenant).count()
    for i in range(have, jobs):
        job = job_services.create_job(
            tenant=tenant, model_type=model_type, machine=machine, post=post, external_id=f"BENCH-{i:06d}"
        )
        job_services.change_status(job, JobStatus.RUNNING, progress=0)
    profile, _ = IntegrationProfile.objects.get_or_create(
        tenant=tenant, defaults={"name": "bench-inbound", "ip_allowlist": "127.0.0.1/32"}
    )
    inbound_services.set_inbound_token(profile, TOKEN)
    ErpKey.objects.filter(profile=profile).delete()
    keyring.add_key(profile, SECRET, state=KeyState.CURRENT)
    keyring.add_key(profile, keyring.new_secret(), state=KeyState.NEXT)
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {BARE_TABLE} (id bigserial PRIMARY KEY, body text, created_at timestamptz)"
        )
        # Planner statistics as autovacuum would keep them (it may be off on a scratch server).
        cursor.execute(f"ANALYZE jobs_job, erp_mes_sync, audit_logs, event_outbox, {BARE_TABLE}")
    running = Job.objects.filter(tenant=tenant, status__in=[JobStatus.RUNNING, JobStatus.PAUSED])
    return list(running.order_by("id").values_list("external_id", flat=True)[:jobs])


def http_request(path: str, body: bytes, headers: dict, port: int) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class Target:
    """Makes the i-th request of a run: distinct job, progress, ext_ts and X-Request-Id, signed."""

    def __init__(self, path, job_ids, port, run_tag):
        self.path, self.job_ids, self.port, self.run_tag = path, job_ids, port, run_tag
        self.base = timezone.now() + timedelta(days=1)

    def make(self, i: int) -> bytes:
        job_id = self.job_ids[i % len(self.job_ids)]
        ext_ts = (self.base + timedelta(microseconds=i)).isoformat()
        body = json.dumps({"job_id": job_id, "status": "running", "progress": i % 101, "ext_ts": ext_ts}).encode()
        return self.signed(i, body)

    def signed(self, i: int, body: bytes) -> bytes:
        """The i-th request with `body`: bearer token, X-Signature over the bytes, a distinct X-Request-Id."""
        headers = {
            "Content-Type": "application/json",
            "Authorization": f"Bearer {TOKEN}",
            "X-Signature": signing.x_signature(SECRET, body),
            "X-Request-Id": f"bench-{self.run_tag}-{i:010d}",
        }
        return http_request(self.path, body, headers, self.port)


async def read_response(reader) -> tuple[int, bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    fields = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
    await reader.readexactly(int(fields.get("content-length", "0")))
    return status, fields.get("connection", "").lower() == "close"


async def drive(target: Target, *, port: int, concurrency: int, seconds: float, counter: list) -> dict:
    latencies, statuses = [], {}
    deadline = time.perf_counter() + seconds

    async def worker():
        reader = writer = None
        while time.perf_counter() < deadline:
            i = counter[0]
            counter[0] += 1
            payload = target.make(i)
            started = time.perf_counter()
            if writer is None:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(payload)
            await writer.drain()
            status, close = await read_response(reader)
            latencies.append(time.perf_counter() - started)
            statuses[status] = statuses.get(status, 0) + 1
            if close:
                writer.close()
                reader = writer = None
        if writer is not None:
            writer.close()

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - began
    latencies.sort()
    return {
        "requests": len(latencies),
        "rps": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p95_ms": latencies[int(len(latencies) * 0.95) - 1] * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
        "statuses": statuses,
    }


def server_env(**extra) -> dict:
    """The environment of a benchmark gunicorn: production-like settings, the throttle out of the way."""
    return {
        **os.environ,
        **extra,
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": settings.SECRET_KEY,
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "LOG_LEVEL": "WARNING",
        # The per-profile throttle stays on the path (its cache round trip is measured), with room to run.
        "THROTTLE_ERP_INBOUND_RATE": "100000000/min",
    }


def start_server(port: int, workers: int, env: dict) -> subprocess.Popen:
    """gunicorn apps.erp.bench_wsgi on 127.0.0.1:`port` with `workers` sync workers."""
    return subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "gunicorn", "apps.erp.bench_wsgi", "--bind", f"127.0.0.1:{port}",
         "--workers", str(workers), "--log-level", "warning"],
        env=env,
    )  # fmt: skip


def wait_ready(port: int, *, timeout: float, interval: float) -> bool:
    """Whether /health/ready on `port` answered 200 within `timeout` seconds (polled every `interval`)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/ready", timeout=2) as response:
                if response.status == 200:
                    return True
        except OSError:
            time.sleep(interval)
    return False
