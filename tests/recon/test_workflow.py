"""The breaks workflow: each step's capability and tenant, its audit entry, and suppression expiry."""

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from apps.audit.models import AuditLog
from apps.recon import services
from apps.recon.models import Break, BreakKind, BreakState
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def brk(profile_a):
    return Break.objects.create(
        tenant=profile_a.tenant, profile=profile_a, fingerprint="f" * 40, kind=BreakKind.MISSING_IN_ERP, key="e|X"
    )


def _later():
    return timezone.now() + dt.timedelta(days=3)


STEPS = {
    "assign": lambda b, u: services.assign(b, assignee=u, actor=u),
    "comment": lambda b, u: services.comment(b, "bakıyorum", actor=u),
    "resolve": lambda b, u: services.resolve(b, reason="düzeltildi", actor=u),
    "suppress": lambda b, u: services.suppress(b, reason="bilinen fark", until=_later(), actor=u),
}


@pytest.mark.parametrize("step", STEPS)
def test_operators_and_admins_work_breaks(brk, role_users, step):
    for role in ("operator", "admin"):
        brk.refresh_from_db()
        brk.state, brk.suppressed_until = BreakState.OPEN, None
        brk.save()
        STEPS[step](brk, role_users[role])
    assert AuditLog.objects.filter(action__startswith="recon.break_", object_id=str(brk.pk)).count() == 2


@pytest.mark.parametrize("step", STEPS)
@pytest.mark.parametrize("role", ["analyst", "auditor"])
def test_analysts_and_auditors_only_read(brk, role_users, step, role):
    user = role_users[role]
    assert user.has_perm("recon.view_break") or role == "auditor"
    with pytest.raises(PermissionDenied):
        STEPS[step](brk, user)


@pytest.mark.parametrize("step", STEPS)
def test_an_operator_of_another_tenant_cannot_touch_the_break(brk, tenant_b, step):
    stranger = make_user("operator_b", roles=["operator"], tenants=[tenant_b])
    with pytest.raises(PermissionDenied):
        STEPS[step](brk, stranger)


def test_reopen_and_unsuppress_need_their_capabilities(brk, role_users):
    operator, analyst = role_users["operator"], role_users["analyst"]
    services.suppress(brk, reason="bilinen fark", until=_later(), actor=operator)
    with pytest.raises(PermissionDenied):
        services.unsuppress(brk, actor=analyst)
    services.unsuppress(brk, actor=operator)
    assert brk.state == BreakState.OPEN
    services.resolve(brk, reason="tamam", actor=operator)
    with pytest.raises(PermissionDenied):
        services.reopen(brk, reason="yanlış", actor=analyst)
    services.reopen(brk, reason="yanlış kapatıldı", actor=operator)
    assert brk.state == BreakState.OPEN and brk.closed_at is None
    actions = list(AuditLog.objects.filter(object_id=str(brk.pk)).order_by("id").values_list("action", flat=True))
    assert actions == [
        "recon.break_suppressed",
        "recon.break_unsuppressed",
        "recon.break_resolved",
        "recon.break_reopened",
    ]


def test_reasons_and_expiries_are_required(brk, role_users):
    operator = role_users["operator"]
    with pytest.raises(ValidationError):
        services.resolve(brk, reason=" ", actor=operator)
    with pytest.raises(ValidationError):
        services.suppress(brk, reason="x", until=timezone.now() - dt.timedelta(minutes=1), actor=operator)


def test_only_someone_who_can_work_the_tenants_breaks_can_be_assigned(brk, role_users, tenant_b):
    with pytest.raises(ValidationError):
        services.assign(brk, assignee=role_users["analyst"], actor=role_users["admin"])
    with pytest.raises(ValidationError):
        services.assign(
            brk, assignee=make_user("op_b", roles=["operator"], tenants=[tenant_b]), actor=role_users["admin"]
        )
    services.assign(brk, assignee=role_users["operator"], actor=role_users["admin"])
    assert brk.assignee == role_users["operator"]


def test_an_expired_suppression_reopens_by_beat(brk, role_users):
    services.suppress(brk, reason="bilinen fark", until=_later(), actor=role_users["operator"])
    assert services.expire_suppressions() == 0
    assert services.expire_suppressions(now=timezone.now() + dt.timedelta(days=4)) == 1
    brk.refresh_from_db()
    assert brk.state == BreakState.OPEN and brk.suppressed_until is None
    assert AuditLog.objects.filter(action="recon.break_reopened", object_id=str(brk.pk), actor_id="").exists()
    assert services.expire_suppressions(now=timezone.now() + dt.timedelta(days=4)) == 0  # safe to run twice
