"""A standing legal hold keeps its data from retention, whatever the data class (one test per class)."""

from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.utils import timezone

from apps.audit import services as audit_services
from apps.audit.db_verification import verify_database
from apps.audit.models import AuditLog
from apps.core.models import IdempotencyRecord
from apps.erp.models import ErpSyncAttempt
from apps.events.models import OutboxEvent
from apps.governance import constants, retention, services
from apps.governance.models import HoldScope, RetentionPolicy
from apps.reporting.models import ReportExport
from tests.conftest import make_user
from tests.governance.conftest import make_attempts

OLD = timedelta(days=4000)


def _hold(scope, **kw):
    return services.place_hold(None, scope=scope, reason="litigation 2026/17", **kw)


@pytest.mark.django_db
@pytest.mark.parametrize("scope", [HoldScope.GLOBAL, HoldScope.OBJECT_TYPE, HoldScope.TENANT])
def test_held_erp_sync_attempts_are_never_deleted(scope, tenant_a, tenant_b):
    make_attempts(3, tenant=tenant_a)
    make_attempts(2, tenant=tenant_b)
    kw = {"object_type": constants.ERP_SYNC_ATTEMPTS} if scope == HoldScope.OBJECT_TYPE else {}
    hold = _hold(scope, tenant=tenant_a, **kw) if scope == HoldScope.TENANT else _hold(scope, **kw)
    retention.apply_class(constants.ERP_SYNC_ATTEMPTS)
    assert ErpSyncAttempt.objects.filter(sync__tenant=tenant_a).count() == 3
    left_b = ErpSyncAttempt.objects.filter(sync__tenant=tenant_b).count()
    assert left_b == (0 if scope == HoldScope.TENANT else 2), "a tenant hold keeps only that tenant's rows"
    services.lift_hold(hold, None, reason="case closed")
    retention.apply_class(constants.ERP_SYNC_ATTEMPTS)
    assert not ErpSyncAttempt.objects.exists(), "lifted: the rows go"


@pytest.mark.django_db
def test_held_idempotency_keys_are_never_deleted():
    IdempotencyRecord.objects.create(owner="o", key="k", fingerprint="f", method="POST", path="/", state="done",
                                     created_at=timezone.now() - OLD)  # fmt: skip
    _hold(HoldScope.OBJECT_TYPE, object_type=constants.IDEMPOTENCY_KEYS)
    assert retention.apply_class(constants.IDEMPOTENCY_KEYS).deleted == 0
    assert IdempotencyRecord.objects.count() == 1


@pytest.mark.django_db
def test_held_sessions_are_never_deleted():
    Session.objects.create(session_key="s" * 32, session_data="", expire_date=timezone.now() - OLD)
    _hold(HoldScope.GLOBAL)
    assert retention.apply_class(constants.SESSIONS).deleted == 0
    assert Session.objects.count() == 1


@pytest.mark.django_db
def test_held_outbox_events_are_never_deleted():
    OutboxEvent.objects.create(event_type="t", event_version=1, payload={}, aggregate_type="a", aggregate_id="1",
                               status="published", created_at=timezone.now() - OLD)  # fmt: skip
    _hold(HoldScope.GLOBAL)
    assert retention.apply_class(constants.OUTBOX_EVENTS).deleted == 0
    assert OutboxEvent.objects.count() == 1


@pytest.mark.django_db
def test_held_report_exports_are_never_deleted_and_others_lose_their_file(exports_storage):
    kept, other = make_user("held_person"), make_user("other_person")
    (exports_storage / "x.csv").write_text("a")
    for user in (kept, other):
        ReportExport.objects.create(
            requested_by=user, format="csv", filters={}, file_name="x.csv" if user == other else ""
        )
    ReportExport.objects.update(created_at=timezone.now() - OLD)
    _hold(HoldScope.SUBJECT, subject_id=str(kept.pk))
    run = retention.apply_class(constants.REPORT_EXPORTS)
    assert run.deleted == 1
    assert list(ReportExport.objects.values_list("requested_by", flat=True)) == [kept.pk]
    assert not (exports_storage / "x.csv").exists()


def _old_audit_segment(settings, n, **kw):
    for i in range(n):
        audit_services.record(("user", "41"), "test.event", payload={"i": i}, **kw)
    audit_services.seal_pending()
    AuditLog.objects.all()  # entries are stamped now: make the policy short instead of the entries old
    return audit_services.make_checkpoint(force=True)


@pytest.mark.django_db
@pytest.mark.parametrize("scope", [HoldScope.GLOBAL, HoldScope.SUBJECT, HoldScope.TENANT, None])
def test_held_audit_entries_are_never_purged(scope, settings, tenant_a, _signing_key):
    RetentionPolicy.objects.filter(data_class=constants.AUDIT_ENTRIES).update(retention_days=0)
    checkpoint = _old_audit_segment(settings, 4, tenant_id=tenant_a.pk)
    if scope == HoldScope.SUBJECT:
        _hold(scope, subject_id="41")
    elif scope == HoldScope.TENANT:
        _hold(scope, tenant=tenant_a)
    elif scope == HoldScope.GLOBAL:
        _hold(scope)
    dry = next(r for r in retention.dry_run() if r["data_class"] == constants.AUDIT_ENTRIES)
    run = retention.apply_class(constants.AUDIT_ENTRIES, now=timezone.now() + timedelta(seconds=1))
    assert run.deleted == dry["count"]
    left = AuditLog.objects.filter(seq__lte=checkpoint.tree_size).count()
    assert left == (checkpoint.tree_size if scope else 0)
    audit_services.seal_pending()
    assert verify_database(public_key=_signing_key.public_key()).ok


@pytest.mark.django_db
def test_placing_and_lifting_a_hold_needs_a_reason_and_is_audited():
    with pytest.raises(services.HoldError):
        services.place_hold(None, scope=HoldScope.GLOBAL, reason=" ")
    hold = _hold(HoldScope.GLOBAL)
    with pytest.raises(services.HoldError):
        services.lift_hold(hold, None, reason="")
    services.lift_hold(hold, None, reason="settled")
    actions = list(AuditLog.objects.filter(object_type="governance.legalhold").values_list("action", flat=True))
    assert sorted(actions) == ["governance.legal_hold.lifted", "governance.legal_hold.placed"]
