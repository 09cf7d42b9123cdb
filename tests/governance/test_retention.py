"""Retention: dry run and real run agree, batches resume without deleting twice, archives before deleting."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.core.models import IdempotencyRecord
from apps.erp.models import ErpSyncAttempt
from apps.governance import constants, retention
from apps.governance.models import RetentionPolicy, RetentionRun
from tests.governance.conftest import make_attempts, read_archive


def _count(name):
    return next(r for r in retention.dry_run() if r["data_class"] == name)


@pytest.mark.django_db
def test_default_policies_exist_for_every_data_class():
    names = set(RetentionPolicy.objects.values_list("data_class", flat=True))
    assert {constants.AUDIT_ENTRIES, constants.ERP_SYNC_ATTEMPTS, constants.IDEMPOTENCY_KEYS, constants.SESSIONS,
            constants.OUTBOX_EVENTS, constants.REPORT_EXPORTS} <= names  # fmt: skip
    assert RetentionPolicy.objects.get(data_class=constants.AUDIT_ENTRIES).retention_days == 7 * 365


@pytest.mark.django_db
def test_the_dry_run_counts_what_the_real_run_deletes():
    make_attempts(7)
    make_attempts(3, age_days=1)
    dry = _count(constants.ERP_SYNC_ATTEMPTS)
    assert dry["count"] == 7
    assert ErpSyncAttempt.objects.count() == 10, "a dry run deletes nothing"
    run = retention.apply_class(constants.ERP_SYNC_ATTEMPTS, batch=3)
    assert run.deleted == dry["count"] == 7
    assert ErpSyncAttempt.objects.count() == 3


@pytest.mark.django_db
def test_an_interrupted_run_resumes_without_deleting_twice_or_skipping(exports_storage):
    RetentionPolicy.objects.filter(data_class=constants.ERP_SYNC_ATTEMPTS).update(archive_before_delete=True)
    make_attempts(10)
    ids = set(ErpSyncAttempt.objects.values_list("pk", flat=True))
    run = retention.apply_class(constants.ERP_SYNC_ATTEMPTS, batch=3, stop_after=2)
    assert run.state == "running" and run.deleted == 6
    assert ErpSyncAttempt.objects.count() == 4
    make_attempts(2, age_days=1)  # newer rows are not part of the fixed cutoff
    again = retention.apply_class(constants.ERP_SYNC_ATTEMPTS, batch=3)
    assert again.pk == run.pk and again.state == "done"
    assert again.deleted == 10 and ErpSyncAttempt.objects.count() == 2
    manifest, rows = read_archive(exports_storage, again.manifest)
    assert sorted(r["id"] for r in rows) == sorted(ids), "every row archived exactly once"
    assert manifest["rows"] == 10 and len(manifest["parts"]) == 4


@pytest.mark.django_db
def test_idempotency_keys_past_their_ttl_go():
    now = timezone.now()
    for i, age in enumerate((0, 3)):
        IdempotencyRecord.objects.create(owner="o", key=f"k{i}", fingerprint="f", method="POST", path="/",
                                         state="done", created_at=now - timedelta(days=age))  # fmt: skip
    run = retention.apply_class(constants.IDEMPOTENCY_KEYS)
    assert run.deleted == 1 and IdempotencyRecord.objects.count() == 1


@pytest.mark.django_db
def test_classes_whose_model_is_not_installed_are_skipped_cleanly(monkeypatch):
    from apps.governance import registry

    missing = registry.DataClass("not_installed", "nosuchapp.Thing", "created_at", "an app not installed", lambda: 1)
    monkeypatch.setitem(registry.CLASSES, missing.name, missing)
    rows = {r["data_class"]: r for r in retention.dry_run()}
    assert rows["not_installed"]["skipped"] == "model not installed"
    assert retention.apply_class("not_installed") is None
    assert all(isinstance(run, RetentionRun) for run in retention.apply_all())


@pytest.mark.django_db
def test_an_interrupted_run_without_archive_resumes_by_key_range(tenant_a):
    from apps.governance import services
    from apps.governance.models import HoldScope

    make_attempts(5)
    held = make_attempts(4, tenant=tenant_a)
    services.place_hold(None, scope=HoldScope.TENANT, tenant=tenant_a, reason="case")
    make_attempts(5)
    dry = _count(constants.ERP_SYNC_ATTEMPTS)["count"]
    run = retention.apply_class(constants.ERP_SYNC_ATTEMPTS, batch=3, stop_after=2)
    assert run.deleted == 6
    run = retention.apply_class(constants.ERP_SYNC_ATTEMPTS, batch=3)
    assert run.deleted == dry == 10
    assert set(ErpSyncAttempt.objects.values_list("sync", flat=True)) == {held.pk}


@pytest.mark.django_db
def test_old_audit_segments_are_archived_with_their_hashes_then_purged(exports_storage, _signing_key):
    from apps.audit import services as audit_services
    from apps.audit.db_verification import verify_database
    from apps.audit.models import AuditLog

    for i in range(3):
        audit_services.record(None, "test.event", payload={"i": i})
    audit_services.seal_pending()
    checkpoint = audit_services.make_checkpoint(force=True)
    RetentionPolicy.objects.filter(data_class=constants.AUDIT_ENTRIES).update(retention_days=0)
    run = retention.apply_class(constants.AUDIT_ENTRIES, now=timezone.now() + timedelta(seconds=1))
    assert run.deleted == checkpoint.tree_size == 3
    manifest, rows = read_archive(exports_storage, run.manifest)
    assert manifest["data_class"] == constants.AUDIT_ENTRIES and manifest["rows"] == 3
    assert [r["seq"] for r in rows] == [1, 2, 3] and {"record_sha256", "chain_hash", "payload"} <= set(rows[0])
    assert not AuditLog.objects.filter(seq__lte=3).exists()
    audit_services.seal_pending()
    assert verify_database(public_key=_signing_key.public_key()).ok


@pytest.mark.django_db
def test_the_beat_task_applies_retention_unless_governance_is_off(settings):
    from apps.governance.tasks import apply_retention

    make_attempts(2)
    settings.DATA_GOVERNANCE_ENABLED = False
    assert apply_retention() == 0 and ErpSyncAttempt.objects.count() == 2
    settings.DATA_GOVERNANCE_ENABLED = True
    assert apply_retention() >= 2 and ErpSyncAttempt.objects.count() == 0
