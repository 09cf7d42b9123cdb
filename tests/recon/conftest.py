"""Recon fixtures: a profile per tenant, jobs with ERP ids, and a helper that writes an export file."""

import datetime as dt
import io

import pytest
from django.utils import timezone

from apps.erp.models import IntegrationProfile
from apps.recon import services
from apps.recon.models import FileSource
from tests import factories

HEADER = "external_id,machine,model_type,planned_start,status,progress,started_at,finished_at"
T0 = dt.datetime(2026, 11, 30, 8, 0, tzinfo=dt.UTC)


@pytest.fixture
def profile_a(tenant_a):
    return IntegrationProfile.objects.create(tenant=tenant_a, name="ERP A")


@pytest.fixture
def profile_b(tenant_b):
    return IntegrationProfile.objects.create(tenant=tenant_b, name="ERP B")


@pytest.fixture
def jobs_a(tenant_a):
    """Three jobs on tenant A: ERP-1 running at 40 %, ERP-2 succeeded, ERP-3 queued."""
    machine = factories.MachineFactory(tenant=tenant_a, code="M1")
    post = factories.PostFactory(tenant=tenant_a, machine=machine, code="P1")
    model_type = factories.ModelTypeFactory(tenant=tenant_a, code="MT1")
    made = {}
    for ext, status, progress in (("ERP-1", "running", 40), ("ERP-2", "succeeded", 100), ("ERP-3", "queued", 0)):
        made[ext] = factories.JobFactory(
            tenant=tenant_a,
            post=post,
            machine=machine,
            model_type=model_type,
            external_id=ext,
            status=status,
            progress=progress,
            created_at=T0,
            started_at=T0 if status != "queued" else None,
        )
    return made


def csv_bytes(*rows, header=HEADER, newline="\n", encoding="utf-8") -> bytes:
    return (newline.join([header, *rows]) + newline).encode(encoding)


def load(profile, data: bytes, *, name="export.csv", force=False, actor=None, **kw):
    return services.register_file(
        io.BytesIO(data), name=name, profile=profile, source=FileSource.COMMAND, force=force, actor=actor, **kw
    )


def now():
    return timezone.now()
