"""Demo data that looks like a factory, written with bulk inserts so 100k jobs take seconds, not minutes.

Jobs arrive as a steady flow over the last `days` days, following the three shifts of an Istanbul plant
(fewer at night, on Saturdays and fewest on Sundays), on machines that are sometimes down. Each job is then
simulated: a wait in the queue (minutes for most, days for planned work), a run whose length depends on the
model type and the machine, sometimes a pause, and an outcome whose failure rate depends on the machine.
What is still queued, running or paused at `now` is simply the recent tail of that flow. Every job and its
history obey the rules `apps.jobs.services.change_status` enforces (tests/demo/test_seed_demo.py checks them);
the rows are generated already in that state, so they do not pass through change_status one by one.

This module sits above the apps it seeds (accounts, billing, catalog, jobs): none of them imports it.
"""

import bisect
import datetime as dt
import math
import random
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.color import no_style
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from apps.accounts import services as account_services
from apps.accounts.capabilities import ADMIN, ANALYST, AUDITOR, OPERATOR
from apps.accounts.models import Tenant
from apps.billing.models import Invoice, InvoiceLine, InvoiceStatus, License, LicenseState
from apps.billing.services import recalculate_invoice
from apps.catalog.models import Machine, Material, ModelType, Post, Template
from apps.jobs.models import Job, JobStatus, JobStatusChange, StatusSource
from apps.reporting import rollup

from . import seed_sql

TENANT_NAMES = [
    ("Anadolu Döküm", "anadolu"),
    ("Boğaziçi Pres", "bogazici"),
    ("Çukurova Kalıp", "cukurova"),
    ("Ege Talaşlı İmalat", "ege"),
    ("Karadeniz Kaynak", "karadeniz"),
    ("İç Anadolu Montaj", "icanadolu"),
]
MACHINES = ["CNC Torna", "CNC Freze", "Lazer Kesim", "Abkant Pres", "Kaynak Robotu", "Boya Hattı"]
# Model types and their typical run in minutes on an average machine.
MODEL_TYPES = [
    ("Flanş", 22),
    ("Mil", 35),
    ("Dişli", 55),
    ("Braket", 12),
    ("Gövde", 80),
    ("Kapak", 16),
    ("Şaft", 42),
    ("Rulman Yatağı", 65),
]
MATERIALS = [("ST37 Sac", "kg"), ("Alüminyum 6061", "kg"), ("Paslanmaz 304", "kg"), ("Pirinç", "kg"), ("Boya", "lt")]
TEMPLATES = ["Standart", "Hassas", "Seri Üretim", "Prototip"]
DEMO_USERS = [("admin", None), ("yonetici", ADMIN), ("analist", ANALYST), ("operator", OPERATOR), ("denetci", AUDITOR)]
BATCH = 5000

PLANT_TZ = ZoneInfo("Europe/Istanbul")
# Jobs released per hour, relative to a weekday day shift: three shifts (08-16, 16-24, 00-08 local time).
SHIFT_LOAD = [(0, 0.35), (8, 1.0), (16, 0.75)]
WEEKDAY_LOAD = [1.0, 1.0, 1.0, 1.0, 0.95, 0.55, 0.2]  # Monday .. Sunday
MINUTE, HOUR, DAY = 60.0, 3600.0, 86400.0
# Most jobs start within the hour; planned work waits in the queue for days.
PLANNED_SHARE, PLANNED_MEAN_WAIT = 0.3, 6 * DAY
CANCELLED_IN_QUEUE, FAILED_IN_QUEUE, CANCELLED_RUNNING = 0.05, 0.01, 0.02
PAUSED_SHARE, LONG_PAUSE_SHARE = 0.1, 0.15


@dataclass
class DemoSummary:
    tenants: int = 0
    jobs: int = 0
    status_changes: int = 0
    users: list = field(default_factory=list)


@dataclass
class Plant:
    """One tenant's catalog and how it behaves: machine speed, failure rate and downtime, typical runs."""

    posts: list
    model_types: list
    materials: list
    templates: list
    machine_speed: dict
    machine_failure: dict
    machine_down: dict  # machine id -> list of (from, until) epoch seconds
    type_minutes: dict
    posts_by_machine: dict = field(default_factory=dict)

    def __post_init__(self):
        for post in self.posts:
            self.posts_by_machine.setdefault(post.machine_id, []).append(post)

    def down_until(self, machine_id, at):
        """The end of the downtime `at` falls into, or None when the machine is up."""
        for since, until in self.machine_down.get(machine_id, ()):
            if since <= at < until:
                return until
        return None


def _behaviour(machines, model_types, rng, start, now):
    speed = {m.pk: rng.uniform(0.7, 1.4) for m in machines}
    failure = {m.pk: rng.uniform(0.02, 0.09) for m in machines}
    # One machine that fails far more often than the others: the breakdowns should show it.
    if machines:
        failure[rng.choice(machines).pk] = rng.uniform(0.18, 0.28)
    down = {}
    for machine in rng.sample(machines, min(2, len(machines) - 1)):
        since = rng.uniform(start, now - 3 * DAY)
        down[machine.pk] = [(since, since + rng.uniform(1.5, 4) * DAY)]
    # ... and one that is down right now, its queue growing.
    up = [m for m in machines if m.pk not in down]
    if len(machines) > 1 and up:
        down[rng.choice(up).pk] = [(now - rng.uniform(4, 20) * HOUR, now + DAY)]
    typical = dict(MODEL_TYPES)
    minutes = {t.pk: typical.get(t.name, 30) * rng.uniform(0.85, 1.15) for t in model_types}
    return speed, failure, down, minutes


def _tenant_catalog(tenant, rng, start, now):
    machines = Machine.objects.bulk_create(
        Machine(tenant=tenant, code=f"M{i + 1:02d}", name=name, location=f"Hol {1 + i // 2}")
        for i, name in enumerate(MACHINES)
    )
    posts = Post.objects.bulk_create(
        Post(tenant=tenant, machine=m, code=f"{m.code}-P{p + 1}", name=f"{m.name} İstasyon {p + 1}")
        for m in machines
        for p in range(3)
    )
    model_types = ModelType.objects.bulk_create(
        ModelType(tenant=tenant, code=f"MT{i + 1:02d}", name=name) for i, (name, _minutes) in enumerate(MODEL_TYPES)
    )
    materials = Material.objects.bulk_create(
        Material(tenant=tenant, code=f"MAT{i + 1:02d}", name=name, unit=unit)
        for i, (name, unit) in enumerate(MATERIALS)
    )
    templates = Template.objects.bulk_create(
        Template(tenant=tenant, code=f"T{i + 1:02d}", name=name) for i, name in enumerate(TEMPLATES)
    )
    return Plant(posts, model_types, materials, templates, *_behaviour(machines, model_types, rng, start, now))


def _existing_catalog(tenant, rng, start, now):
    machines = list(Machine.objects.filter(tenant=tenant))
    model_types = list(ModelType.objects.filter(tenant=tenant))
    return Plant(
        list(Post.objects.filter(tenant=tenant)),
        model_types,
        list(Material.objects.filter(tenant=tenant)),
        list(Template.objects.filter(tenant=tenant)),
        *_behaviour(machines, model_types, rng, start, now),
    )


def _arrival_hours(start, now):
    """(hour starts, cumulative load) over [start, now): how many jobs each hour releases, relatively."""
    hours, cumulative, total = [], [], 0.0
    t = start
    while t < now:
        local = dt.datetime.fromtimestamp(t, PLANT_TZ)
        shift = next(load for begins, load in reversed(SHIFT_LOAD) if local.hour >= begins)
        total += shift * WEEKDAY_LOAD[local.weekday()] * (min(now, t + HOUR) - t) / HOUR
        hours.append(t)
        cumulative.append(total)
        t += HOUR
    return hours, cumulative


def _arrivals(n, start, now, rng):
    """`n` creation times (epoch seconds, sorted) drawn from the shift and weekday pattern."""
    hours, cumulative = _arrival_hours(start, now)
    total, last = cumulative[-1], len(hours) - 1
    times = []
    for _ in range(n):
        i = min(bisect.bisect_left(cumulative, rng.random() * total), last)
        times.append(min(hours[i] + rng.random() * HOUR, now - 1))
    times.sort()
    return times


JOB_COLUMNS = (
    "id",
    "tenant_id",
    "public_id",
    "external_id",
    "model_type_id",
    "machine_id",
    "post_id",
    "material_id",
    "template_id",
    "status",
    "progress",
    "created_at",
    "started_at",
    "finished_at",
    "duration_ms",
    "updated_at",
)
CHANGE_COLUMNS = ("id", "job_id", "from_status", "to_status", "progress", "actor_id", "source", "reason", "changed_at")


def _pick_post(plant, created, rng):
    """A post on a machine that is up when the job is released (down machines get no new work)."""
    post = rng.choice(plant.posts)
    for _ in range(4):
        if plant.down_until(post.machine_id, created) is None:
            break
        post = rng.choice(plant.posts)
    return post


def _job_and_history(tenant, n, created, now, rng, plant):
    """One job as a dict of column values (epoch seconds for times), and its history as
    (from, to, progress, at) tuples, as change_status would have written them by `now`."""
    post = _pick_post(plant, created, rng)
    model_type = rng.choice(plant.model_types)
    machine = post.machine_id
    job = {
        "tenant_id": tenant.pk,
        "public_id": uuid.UUID(int=rng.getrandbits(128), version=4),
        "external_id": f"{tenant.slug.upper()[:3]}-{n:07d}",
        "model_type_id": model_type.pk,
        "machine_id": machine,
        "post_id": post.pk,
        "material_id": rng.choice(plant.materials).pk,
        "template_id": rng.choice(plant.templates).pk,
        "status": JobStatus.QUEUED,
        "progress": 0,
        "created_at": created,
        "started_at": None,
        "finished_at": None,
        "duration_ms": None,
        "updated_at": created,
    }
    history = []
    if rng.random() < PLANNED_SHARE:
        wait = rng.expovariate(1 / PLANNED_MEAN_WAIT)
    else:
        wait = rng.lognormvariate(math.log(20 * MINUTE), 0.9)
    start = created + wait
    down_until = plant.down_until(machine, start)
    if down_until is not None:
        start = down_until + rng.uniform(5, 90) * MINUTE

    # Taken out of the queue before it ever ran: cancelled by a planner, or refused (material missing).
    leave = rng.random()
    if leave < CANCELLED_IN_QUEUE + FAILED_IN_QUEUE:
        at = created + rng.uniform(0.05, 1) * (start - created)
        if at <= now:
            status = JobStatus.CANCELLED if leave < CANCELLED_IN_QUEUE else JobStatus.FAILED
            job.update(status=status, finished_at=at, updated_at=at)
            history.append((JobStatus.QUEUED, status, 0, at))
        return job, history
    if start > now:
        return job, history

    job.update(status=JobStatus.RUNNING, started_at=start, updated_at=start)
    history.append((JobStatus.QUEUED, JobStatus.RUNNING, 0, start))
    run = plant.type_minutes[model_type.pk] * plant.machine_speed[machine] * MINUTE * rng.lognormvariate(0, 0.3)
    outcome, share = JobStatus.SUCCEEDED, 1.0
    fate = rng.random()
    if fate < plant.machine_failure[machine]:
        outcome, share = JobStatus.FAILED, rng.uniform(0.05, 0.95)
    elif fate < plant.machine_failure[machine] + CANCELLED_RUNNING:
        outcome, share = JobStatus.CANCELLED, rng.uniform(0.05, 0.9)

    pause_at = pause_share = resume_at = None
    if rng.random() < PAUSED_SHARE:
        pause_share = rng.uniform(0.05, 0.95) * share
        if rng.random() < LONG_PAUSE_SHARE:
            pause = rng.expovariate(1 / (1.5 * DAY))  # waiting for material or a repair
        else:
            pause = rng.lognormvariate(math.log(30 * MINUTE), 0.8)
        pause_at = start + pause_share * run
        resume_at = pause_at + pause
    end = start + share * run + (resume_at - pause_at if pause_at is not None else 0)

    def progress_after(active):
        return max(0, min(99, int(100 * active / run)))

    if pause_at is not None and pause_at <= now:
        paused_progress = progress_after(pause_share * run)
        history.append((JobStatus.RUNNING, JobStatus.PAUSED, paused_progress, pause_at))
        if now < resume_at:
            job.update(status=JobStatus.PAUSED, progress=paused_progress, updated_at=pause_at)
            return job, history
        history.append((JobStatus.PAUSED, JobStatus.RUNNING, paused_progress, resume_at))
        job["updated_at"] = resume_at
    if end > now:
        active = (now - start) - (resume_at - pause_at if resume_at is not None and resume_at <= now else 0)
        # The ERP reports progress every few minutes while a job runs.
        last_report = max(job["updated_at"], now - rng.uniform(0, 5 * MINUTE))
        job.update(progress=progress_after(active - (now - last_report)), updated_at=last_report)
        return job, history
    progress = 100 if outcome == JobStatus.SUCCEEDED else progress_after(share * run)
    job.update(
        status=outcome,
        progress=progress,
        finished_at=end,
        duration_ms=max(0, int((end - start) * 1000)),
        updated_at=end,
    )
    history.append((JobStatus.RUNNING, outcome, progress, end))
    return job, history


def _insert(model, columns, rows):
    """Insert plain tuples: COPY on PostgreSQL, executemany elsewhere.

    bulk_create spends most of its time preparing values field by field; for millions of demo rows
    whose types are known, writing them directly is several times faster.
    """
    qn = connection.ops.quote_name
    table, names = qn(model._meta.db_table), ", ".join(qn(c) for c in columns)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            placeholders = ", ".join(["%s"] * len(columns))
            cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({placeholders})", rows)  # noqa: S608


def _db_value_adapters():
    ops = connection.ops
    if connection.vendor == "postgresql":
        return (lambda v: v), (lambda v: v)
    return (lambda v: None if v is None else ops.adapt_datetimefield_value(v)), (lambda v: v.hex)


def _write_jobs(pending, next_job_id, next_change_id):
    adapt, as_uuid = _db_value_adapters()
    utc = dt.UTC

    def when(seconds):
        return None if seconds is None else adapt(dt.datetime.fromtimestamp(seconds, utc))

    job_rows, change_rows = [], []
    for offset, (job, history) in enumerate(pending):
        job_id = next_job_id + offset
        if job["started_at"] is not None and job["finished_at"] is not None:
            # From the stored (microsecond) times, exactly as change_status computes it.
            started = dt.datetime.fromtimestamp(job["started_at"], utc)
            finished = dt.datetime.fromtimestamp(job["finished_at"], utc)
            job["duration_ms"] = max(0, int((finished - started).total_seconds() * 1000))
        job_rows.append(
            (
                job_id,
                job["tenant_id"],
                as_uuid(job["public_id"]),
                job["external_id"],
                job["model_type_id"],
                job["machine_id"],
                job["post_id"],
                job["material_id"],
                job["template_id"],
                job["status"],
                job["progress"],
                when(job["created_at"]),
                when(job["started_at"]),
                when(job["finished_at"]),
                job["duration_ms"],
                when(job["updated_at"]),
            )
        )
        for a, b, progress, at in history:
            change_rows.append(
                (next_change_id + len(change_rows), job_id, a, b, progress, None, StatusSource.SEED, "", when(at))
            )
    _insert(Job, JOB_COLUMNS, job_rows)
    _insert(JobStatusChange, CHANGE_COLUMNS, change_rows)
    return len(job_rows), len(change_rows)


def _next_id(model):
    return (model.objects.aggregate(m=Max("id"))["m"] or 0) + 1


def _reset_sequences():
    """Ids were assigned here, so PostgreSQL's sequences must be moved past them."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for sql in connection.ops.sequence_reset_sql(no_style(), [Job, JobStatusChange]):
            cursor.execute(sql)


def _billing(tenant, rng, today):
    License.objects.create(
        tenant=tenant,
        seats=rng.choice([5, 10, 25, 50]),
        valid_from=today - dt.timedelta(days=300),
        valid_until=today + dt.timedelta(days=rng.randint(-20, 200)),
        state=LicenseState.ACTIVE,
    )
    License.objects.create(
        tenant=tenant,
        product="tezgah-erp-connector",
        seats=1,
        valid_from=today - dt.timedelta(days=400),
        valid_until=today - dt.timedelta(days=35),
        state=LicenseState.EXPIRED,
    )
    for months_back in range(3, 0, -1):
        start = (today.replace(day=1) - dt.timedelta(days=31 * months_back)).replace(day=1)
        end = (start + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)
        invoice = Invoice.objects.create(
            tenant=tenant,
            number=f"{tenant.slug.upper()[:3]}-{start:%Y%m}",
            period_start=start,
            period_end=end,
            status=InvoiceStatus.PAID if months_back > 1 else InvoiceStatus.ISSUED,
        )
        InvoiceLine.objects.bulk_create(
            [
                InvoiceLine(
                    invoice=invoice,
                    description="Tezgah lisansı (koltuk)",
                    quantity=Decimal(10),
                    unit_price=Decimal("450.00"),
                ),
                InvoiceLine(
                    invoice=invoice,
                    description="ERP entegrasyonu",
                    quantity=Decimal(1),
                    unit_price=Decimal(rng.choice(["1200.00", "1500.00"])),
                ),
            ]
        )
        recalculate_invoice(invoice)


def _demo_users(tenants, password):
    user_model = get_user_model()
    created = []
    for username, role in DEMO_USERS:
        user, is_new = user_model.objects.get_or_create(
            username=username,
            defaults={"is_staff": True, "is_superuser": role is None, "email": f"{username}@example.com"},
        )
        if is_new:
            user.set_password(password)
            user.save()
        if role:
            user.groups.set(Group.objects.filter(name=role))
        for tenant in tenants:
            account_services.grant_tenant_access(user, tenant)
        created.append((username, role or "superuser"))
    return created


def _write_python_jobs(summary, made_tenants, plants, jobs, start, end, rng, start_n, next_job_id, next_change_id):
    """Simulate each job in Python and COPY (PostgreSQL) or executemany (SQLite) them in batches."""
    arrivals = _arrivals(jobs, start, end, rng)
    pending = []
    for i in range(jobs + 1):
        if pending and (len(pending) >= BATCH * 4 or i == jobs):
            with transaction.atomic():
                n_jobs, n_changes = _write_jobs(pending, next_job_id, next_change_id)
            next_job_id += n_jobs
            next_change_id += n_changes
            summary.jobs += n_jobs
            summary.status_changes += n_changes
            pending = []
        if i < jobs:
            tenant = made_tenants[i % len(made_tenants)]
            pending.append(_job_and_history(tenant, start_n + i + 1, arrivals[i], end, rng, plants[tenant.pk]))


def seed_demo(*, password, tenants=3, jobs=100_000, days=90, seed=42, now=None, log=None) -> DemoSummary:
    """Create `tenants` tenants with catalogs, licenses, invoices, `jobs` jobs that arrived over the last `days`
    days, and one user per role."""
    if not 1 <= tenants <= len(TENANT_NAMES):
        raise ValueError(f"--tenants must be between 1 and {len(TENANT_NAMES)}")
    if jobs < 0:
        raise ValueError("--jobs cannot be negative")
    if not 7 <= days <= 3650:
        raise ValueError("--days must be between 7 and 3650")
    rng = random.Random(seed)  # noqa: S311 -- repeatable demo data, not secrets
    now = now or timezone.now()
    end = now.timestamp()
    start = end - days * DAY
    summary = DemoSummary()
    made_tenants = []
    for name, slug in TENANT_NAMES[:tenants]:
        with transaction.atomic():
            tenant, created = Tenant.objects.get_or_create(slug=slug, defaults={"name": name})
            made_tenants.append(tenant)
            if created:
                _billing(tenant, rng, timezone.localdate(now))
    summary.tenants = len(made_tenants)
    plants = {}
    for tenant in made_tenants:
        if not Machine.objects.filter(tenant=tenant).exists():
            with transaction.atomic():
                plants[tenant.pk] = _tenant_catalog(tenant, rng, start, end)
        else:
            plants[tenant.pk] = _existing_catalog(tenant, rng, start, end)
    # Ids are assigned here (so history rows can point at their jobs without a RETURNING round trip);
    # seed while nothing else writes jobs, as `make run` does before starting its processes.
    start_n = Job.objects.count()
    next_job_id, next_change_id = _next_id(Job), _next_id(JobStatusChange)
    # The report rollups' triggers would cost an upsert per row; they are paused for the load and the
    # rollups rebuilt in one grouped pass after it (apps/reporting/rollup.py).
    with rollup.paused():
        if connection.vendor == "postgresql":
            # PostgreSQL runs the same simulation itself (apps/demo/seed_sql.py): no row passes through Python.
            summary.jobs, summary.status_changes = seed_sql.write_jobs(
                tenants=made_tenants,
                plants=plants,
                arrival_hours=_arrival_hours(start, end),
                jobs=jobs,
                now=end,
                seed=seed,
                start_n=start_n,
                first_id=next_job_id,
                log=log,
            )
        else:
            # A second seed into existing jobs draws from its own stream: the same --seed again would repeat the
            # first load's public ids (the first load on an empty database stays exactly as before).
            job_rng = rng if start_n == 0 else random.Random(f"{seed}:after:{start_n}")  # noqa: S311
            _write_python_jobs(
                summary, made_tenants, plants, jobs, start, end, job_rng, start_n, next_job_id, next_change_id
            )
    _reset_sequences()
    if connection.vendor == "postgresql" and jobs >= seed_sql.LARGE_LOAD and not connection.in_atomic_block:
        # Set the visibility map (index-only scans for the reports) and fresh statistics after a bulk load.
        with connection.cursor() as cursor:
            cursor.execute("VACUUM (ANALYZE) jobs_job, jobs_jobstatuschange")
    summary.users = _demo_users(made_tenants, password)
    return summary
