"""Realistic demo data, written with bulk inserts so 100k jobs take seconds, not minutes.

Demo jobs are generated already in their final state with a consistent history, so they do not pass
through change_status one by one; everything an operator does afterwards does.
"""

import datetime as dt
import math
import random
import uuid
from dataclasses import dataclass
from decimal import Decimal

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

from .models import Job, JobStatus, JobStatusChange, StatusSource

TENANT_NAMES = [
    ("Anadolu Döküm", "anadolu"),
    ("Boğaziçi Pres", "bogazici"),
    ("Çukurova Kalıp", "cukurova"),
    ("Ege Talaşlı İmalat", "ege"),
    ("Karadeniz Kaynak", "karadeniz"),
    ("İç Anadolu Montaj", "icanadolu"),
]
MACHINES = ["CNC Torna", "CNC Freze", "Lazer Kesim", "Abkant Pres", "Kaynak Robotu", "Boya Hattı"]
MODEL_TYPES = ["Flanş", "Mil", "Dişli", "Braket", "Gövde", "Kapak", "Şaft", "Rulman Yatağı"]
MATERIALS = [("ST37 Sac", "kg"), ("Alüminyum 6061", "kg"), ("Paslanmaz 304", "kg"), ("Pirinç", "kg"), ("Boya", "lt")]
TEMPLATES = ["Standart", "Hassas", "Seri Üretim", "Prototip"]
# Share of generated jobs in each final status: a tenth or more stay queued.
STATUS_WEIGHTS = {
    JobStatus.QUEUED: 0.12,
    JobStatus.RUNNING: 0.07,
    JobStatus.PAUSED: 0.03,
    JobStatus.SUCCEEDED: 0.62,
    JobStatus.FAILED: 0.11,
    JobStatus.CANCELLED: 0.05,
}
_STATUSES, _WEIGHTS = list(STATUS_WEIGHTS), list(STATUS_WEIGHTS.values())
DEMO_USERS = [("admin", None), ("yonetici", ADMIN), ("analist", ANALYST), ("operator", OPERATOR), ("denetci", AUDITOR)]
BATCH = 5000


@dataclass
class DemoSummary:
    tenants: int = 0
    jobs: int = 0
    status_changes: int = 0
    users: list = None


def _tenant_catalog(tenant, rng):
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
        ModelType(tenant=tenant, code=f"MT{i + 1:02d}", name=name) for i, name in enumerate(MODEL_TYPES)
    )
    materials = Material.objects.bulk_create(
        Material(tenant=tenant, code=f"MAT{i + 1:02d}", name=name, unit=unit)
        for i, (name, unit) in enumerate(MATERIALS)
    )
    templates = Template.objects.bulk_create(
        Template(tenant=tenant, code=f"T{i + 1:02d}", name=name) for i, name in enumerate(TEMPLATES)
    )
    # Each machine and model type gets its own typical duration, so breakdowns differ visibly.
    machine_speed = {m.pk: rng.uniform(0.6, 1.6) for m in machines}
    type_minutes = {t.pk: rng.uniform(6, 45) for t in model_types}
    return posts, model_types, materials, templates, machine_speed, type_minutes


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


def _job_and_history(tenant, n, now, rng, catalog):
    """One job as a dict of column values, and its history as (from, to, progress, at) tuples."""
    posts, model_types, materials, templates, machine_speed, type_minutes = catalog
    post = rng.choice(posts)
    model_type = rng.choice(model_types)
    status = rng.choices(_STATUSES, _WEIGHTS)[0]
    if status in (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.PAUSED):
        created = now - dt.timedelta(minutes=rng.uniform(1, 2 * 24 * 60))
    else:
        created = now - dt.timedelta(days=rng.uniform(0.05, 90))
    minutes = type_minutes[model_type.pk] * machine_speed[post.machine_id] * math.exp(rng.gauss(0, 0.35))
    if status == JobStatus.FAILED:
        minutes *= rng.uniform(0.1, 0.9)
    job = {
        "tenant_id": tenant.pk,
        "public_id": uuid.UUID(int=rng.getrandbits(128), version=4),
        "external_id": f"{tenant.slug.upper()[:3]}-{n:07d}",
        "model_type_id": model_type.pk,
        "machine_id": post.machine_id,
        "post_id": post.pk,
        "material_id": rng.choice(materials).pk,
        "template_id": rng.choice(templates).pk,
        "status": status,
        "progress": 0,
        "created_at": created,
        "started_at": None,
        "finished_at": None,
        "duration_ms": None,
        "updated_at": now,
    }
    history = []
    started = created + dt.timedelta(minutes=rng.expovariate(1 / 8))
    never_started = status == JobStatus.QUEUED or (status == JobStatus.CANCELLED and rng.random() < 0.5)
    if never_started or started > now:
        if status == JobStatus.QUEUED:
            return job, history
        # Cancelled or failed before it ever ran: no start, no duration.
        job["finished_at"] = min(started, now)
        history.append((JobStatus.QUEUED, status, 0, job["finished_at"]))
        return job, history
    job["started_at"] = started
    history.append((JobStatus.QUEUED, JobStatus.RUNNING, 0, started))
    finish = started + dt.timedelta(minutes=minutes)
    if status in (JobStatus.RUNNING, JobStatus.PAUSED) or finish > now:
        job["status"] = status if status == JobStatus.PAUSED else JobStatus.RUNNING
        job["progress"] = rng.randint(1, 95)
        if job["status"] == JobStatus.PAUSED:
            history.append((JobStatus.RUNNING, JobStatus.PAUSED, job["progress"], started + (now - started) / 2))
        return job, history
    job["finished_at"] = finish
    job["duration_ms"] = int((finish - started).total_seconds() * 1000)
    job["progress"] = 100 if status == JobStatus.SUCCEEDED else rng.randint(5, 95)
    history.append((JobStatus.RUNNING, status, job["progress"], finish))
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
    when, as_uuid = _db_value_adapters()
    job_rows, change_rows = [], []
    for offset, (job, history) in enumerate(pending):
        job_id = next_job_id + offset
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


def seed_demo(*, password, tenants=3, jobs=100_000, seed=42, now=None) -> DemoSummary:
    """Create `tenants` tenants with catalogs, licenses, invoices, `jobs` jobs spread over 90 days, and users."""
    if not 1 <= tenants <= len(TENANT_NAMES):
        raise ValueError(f"--tenants must be between 1 and {len(TENANT_NAMES)}")
    if jobs < 0:
        raise ValueError("--jobs cannot be negative")
    rng = random.Random(seed)  # noqa: S311 -- repeatable demo data, not secrets
    now = now or timezone.now()
    summary = DemoSummary(users=[])
    made_tenants = []
    for name, slug in TENANT_NAMES[:tenants]:
        with transaction.atomic():
            tenant, created = Tenant.objects.get_or_create(slug=slug, defaults={"name": name})
            made_tenants.append(tenant)
            if created:
                _billing(tenant, rng, timezone.localdate(now))
    summary.tenants = len(made_tenants)
    catalogs = {}
    for tenant in made_tenants:
        if not Machine.objects.filter(tenant=tenant).exists():
            with transaction.atomic():
                catalogs[tenant.pk] = _tenant_catalog(tenant, rng)
        else:
            catalogs[tenant.pk] = _existing_catalog(tenant, rng)
    # Ids are assigned here (so history rows can point at their jobs without a RETURNING round trip);
    # seed while nothing else writes jobs, as `make run` does before starting its processes.
    start_n = Job.objects.count()
    next_job_id, next_change_id = _next_id(Job), _next_id(JobStatusChange)
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
            pending.append(_job_and_history(tenant, start_n + i + 1, now, rng, catalogs[tenant.pk]))
    _reset_sequences()
    summary.users = _demo_users(made_tenants, password)
    return summary


def _existing_catalog(tenant, rng):
    machines = list(Machine.objects.filter(tenant=tenant))
    model_types = list(ModelType.objects.filter(tenant=tenant))
    return (
        list(Post.objects.filter(tenant=tenant)),
        model_types,
        list(Material.objects.filter(tenant=tenant)),
        list(Template.objects.filter(tenant=tenant)),
        {m.pk: rng.uniform(0.6, 1.6) for m in machines},
        {t.pk: rng.uniform(6, 45) for t in model_types},
    )
