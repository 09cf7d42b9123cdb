"""Applying retention policies: a dry run, batched deletion that resumes, archives before deletion, legal holds.

Every class is deleted in keyset batches (primary key order, `GOVERNANCE_RETENTION_BATCH` rows per transaction,
never one unbounded DELETE). A run fixes its cutoff when it starts and records its keyset position in the
transaction that deletes each batch, so a run interrupted half-way resumes where it stopped: nothing is
deleted twice and nothing is skipped. Legal holds are read again for every batch.
"""

import gzip
import hashlib
import json
import logging
import tempfile
from datetime import timedelta

from django.conf import settings
from django.core.files import File
from django.core.files.storage import storages
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from apps.audit import selectors as audit_selectors
from apps.audit import services as audit_services
from apps.audit.models import AuditCheckpoint, AuditLog

from . import constants, registry
from .models import RetentionPolicy, RetentionRun, RunState
from .services import Holds, standing_holds

logger = logging.getLogger(__name__)
ARCHIVE_FORMAT = "tezgah-retention-archive"


def policy_for(name: str) -> RetentionPolicy:
    """The policy row of `name` (created with the class's defaults when a migration did not)."""
    spec = registry.get(name)
    policy, _ = RetentionPolicy.objects.get_or_create(
        data_class=name,
        defaults={"retention_days": spec.default_days(), "archive_before_delete": spec.archive_by_default,
                  "description": spec.description},
    )  # fmt: skip
    return policy


def _eligible(spec, cutoff, holds: Holds):
    """The rows of `spec` older than `cutoff` that no hold keeps, or None when the class is skipped/held."""
    model = spec.model()
    if model is None or holds.blocking(spec.name):
        return None
    qs = model._default_manager.filter(**{f"{spec.timestamp_field}__lt": cutoff}).filter(spec.eligible())
    keep = holds.exclusion(spec.tenant_field, spec.subject_field)
    return qs.exclude(keep) if keep is not None else qs


def _audit_target(cutoff, holds: Holds):
    """(checkpoint tree_size to purge through, entries that go) for the audit log: the largest checkpoint whose
    every entry is older than `cutoff` and held by nobody; (None, 0) when no whole segment may go."""
    if holds.blocking(constants.AUDIT_ENTRIES):
        return None, 0
    start = audit_selectors.retained_start()
    sealed = AuditLog.objects.filter(seq__isnull=False, seq__gte=start)
    limit = sealed.order_by("-seq").values_list("seq", flat=True).first()
    if limit is None:
        return None, 0
    newer = sealed.filter(ts__gte=cutoff).order_by("seq").values_list("seq", flat=True).first()
    if newer is not None:
        limit = min(limit, newer - 1)
    keep = holds.exclusion("tenant_id", "actor_id")
    if holds.subjects:  # entries about a held person (their user row) are kept as well as entries by them
        from django.db.models import Q

        keep = (keep or Q()) | Q(object_type="accounts.user", object_id__in=list(holds.subjects))
    if keep is not None:
        held = sealed.filter(keep).order_by("seq").values_list("seq", flat=True).first()
        if held is not None:
            limit = min(limit, held - 1)
    target = (
        AuditCheckpoint.objects.filter(tree_size__gte=start, tree_size__lte=limit)
        .order_by("-tree_size").values_list("tree_size", flat=True).first()
    )  # fmt: skip
    if target is None:
        return None, 0
    return target, sealed.filter(seq__lte=target).count()


def dry_run(*, now=None) -> list[dict]:
    """What applying every policy now would delete: one row per data class with its count (or why none)."""
    now = now or timezone.now()
    holds = standing_holds()
    out = []
    for name, spec in registry.CLASSES.items():
        policy = policy_for(name)
        cutoff = now - timedelta(days=policy.retention_days)
        row = {"data_class": name, "model": spec.model_label, "retention_days": policy.retention_days,
               "archive_before_delete": policy.archive_before_delete, "cutoff": cutoff.isoformat(), "count": 0,
               "skipped": "", "held_by": None}  # fmt: skip
        blocking = holds.blocking(name)
        if spec.model() is None:
            row["skipped"] = "model not installed"
        elif blocking:
            row["held_by"] = blocking.pk
        elif name == constants.AUDIT_ENTRIES:
            row["through_seq"], row["count"] = _audit_target(cutoff, holds)
        else:
            row["count"] = _eligible(spec, cutoff, holds).count()
        out.append(row)
    return out


def _write_part(run: RetentionRun, rows) -> dict:
    """One compressed JSON-lines part of `run`'s archive in the exports storage; returns its manifest entry."""
    storage = storages["exports"]
    name = f"governance/archive/{run.data_class}/{run.pk}/part-{len(run.parts) + 1:05d}.jsonl.gz"
    digest, count = hashlib.sha256(), 0
    with tempfile.TemporaryFile() as tmp:
        with gzip.GzipFile(fileobj=tmp, mode="wb", mtime=0) as gz:
            for row in rows:
                gz.write(json.dumps(row, cls=DjangoJSONEncoder, ensure_ascii=False, sort_keys=True).encode() + b"\n")
                count += 1
        tmp.seek(0)
        for chunk in iter(lambda: tmp.read(1 << 16), b""):
            digest.update(chunk)
        tmp.seek(0)
        if storage.exists(name):  # left by a batch whose transaction did not commit: it is written again
            storage.delete(name)
        saved = storage.save(name, File(tmp))
    return {"name": saved, "rows": count, "sha256": digest.hexdigest()}


def _write_manifest(run: RetentionRun) -> str:
    storage = storages["exports"]
    name = f"governance/archive/{run.data_class}/{run.pk}/manifest.json"
    body = {"format": ARCHIVE_FORMAT, "version": 1, "data_class": run.data_class, "run": run.pk,
            "cutoff": run.cutoff.isoformat(), "rows": run.archived, "parts": run.parts}  # fmt: skip
    if storage.exists(name):
        storage.delete(name)
    with tempfile.TemporaryFile() as tmp:
        tmp.write(json.dumps(body, indent=2, sort_keys=True).encode())
        tmp.seek(0)
        return storage.save(name, File(tmp))


def _open_run(name, cutoff) -> RetentionRun:
    """The class's interrupted run (resumed with its own cutoff) or a new one."""
    run = RetentionRun.objects.filter(data_class=name, state=RunState.RUNNING).first()
    return run or RetentionRun.objects.create(data_class=name, cutoff=cutoff, started_at=timezone.now())


def apply_class(name: str, *, now=None, batch=None, stop_after=None) -> RetentionRun | None:
    """Apply `name`'s policy; returns the run (None: the model is not installed). `stop_after` batches: tests."""
    spec = registry.get(name)
    if spec.model() is None:
        return None
    policy = policy_for(name)
    batch = batch or settings.GOVERNANCE_RETENTION_BATCH
    run = _open_run(name, (now or timezone.now()) - timedelta(days=policy.retention_days))
    if name == constants.AUDIT_ENTRIES:
        return _apply_audit(run, policy, batch=batch, stop_after=stop_after)
    model, done = spec.model(), 0
    while stop_after is None or done < stop_after:
        with transaction.atomic():
            run = RetentionRun.objects.select_for_update().get(pk=run.pk)
            qs = _eligible(spec, run.cutoff, standing_holds())
            if qs is None:
                break
            if run.last_pk:
                qs = qs.filter(pk__gt=run.last_pk)
            if policy.archive_before_delete or spec.deleter is not registry.delete_rows:
                pks = list(qs.order_by("pk").values_list("pk", flat=True)[:batch])
                if not pks:
                    break
                if policy.archive_before_delete:
                    rows = model._default_manager.filter(pk__in=pks).order_by("pk").values()
                    run.parts.append(_write_part(run, rows))
                    run.archived += run.parts[-1]["rows"]
                spec.deleter(model, pks)
                deleted, last = len(pks), pks[-1]
            else:
                deleted, last = _delete_range(model, qs, batch)
                if not deleted:
                    break
            run.deleted += deleted
            run.last_pk = str(last)
            run.save(update_fields=["parts", "archived", "deleted", "last_pk"])
        done += 1
    else:
        return run  # interrupted on purpose: the next call resumes
    return _finish(run)


def _delete_range(model, qs, batch) -> tuple[int, object]:
    """Delete the next `batch` eligible rows as one key range, without sending their keys back and forth: the
    batch-th key bounds the range (one indexed row read), and one DELETE takes the eligible rows up to it."""
    ordered = qs.order_by("pk").values_list("pk", flat=True)
    tail = list(ordered[batch - 1 : batch])
    last = tail[0] if tail else ordered.last()
    if last is None:
        return 0, None
    _total, per_model = qs.filter(pk__lte=last).delete()
    return per_model.get(model._meta.label, 0), last


def _apply_audit(run, policy, *, batch, stop_after):
    if not run.last_pk:
        target, _count = _audit_target(run.cutoff, standing_holds())
        if target is None:
            return _finish(run)
        run.last_pk = str(target)
        run.save(update_fields=["last_pk"])
    target = int(run.last_pk)

    def archive(entries):
        if policy.archive_before_delete:
            run.parts.append(_write_part(run, entries))
            run.archived += len(entries)
            RetentionRun.objects.filter(pk=run.pk).update(parts=run.parts, archived=run.archived)

    before = AuditLog.objects.filter(seq__isnull=False, seq__lte=target).count()
    purge = audit_services.purge_through(
        target, reason=f"retention policy {policy.data_class}: {policy.retention_days} days", batch=batch,
        archive=archive, stop_after=stop_after,
    )  # fmt: skip
    run.deleted += before - AuditLog.objects.filter(seq__isnull=False, seq__lte=target).count()
    run.save(update_fields=["deleted"])
    if purge.finished_at is None:
        return run
    return _finish(run)


def _finish(run: RetentionRun) -> RetentionRun:
    with transaction.atomic():
        if run.parts:
            run.manifest = _write_manifest(run)
        run.state, run.finished_at = RunState.DONE, timezone.now()
        run.save(update_fields=["manifest", "state", "finished_at"])
        audit_services.record(None, "governance.retention.applied", run, {
            "data_class": run.data_class, "cutoff": run.cutoff.isoformat(), "deleted": run.deleted,
            "archived": run.archived, "manifest": run.manifest,
        })  # fmt: skip
    return run


def apply_all(*, now=None) -> list[RetentionRun]:
    """Apply every installed class's policy (the beat task's body)."""
    runs = []
    for name in registry.CLASSES:
        run = apply_class(name, now=now)
        if run is not None:
            runs.append(run)
    return runs
