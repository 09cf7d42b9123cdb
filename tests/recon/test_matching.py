"""Matching: break types, tolerances, status map, duplicates, re-runs that update and auto-clear, old versions."""

import pytest

from apps.jobs.models import Job
from apps.recon import services
from apps.recon.models import Break, BreakKind, BreakState

from .conftest import csv_bytes, load

pytestmark = pytest.mark.django_db


def _run(profile, *rows, **kw):
    entry = load(profile, csv_bytes(*rows), force=True)
    assert entry.status == "loaded", entry.errors
    return services.run(entry, **kw)


def _open(profile):
    return {(b.kind, b.key): b for b in Break.objects.filter(profile=profile, state=BreakState.OPEN)}


def test_every_break_type_is_found(profile_a, jobs_a):
    recon_run = _run(
        profile_a,
        "ERP-1,M1,MT1,,running,45,2026-11-30T08:00:00Z,",  # progress 45 vs 40: beyond 2 points
        "ERP-2,M1,MT1,,running,100,2026-11-30T08:00:00Z,",  # status differs
        "ERP-9,M1,MT1,,queued,0,,",  # not in the portal
        "ERP-9,M1,MT1,,queued,0,,",  # ...twice: a duplicate key
        "ERP-8,M1,MT1,,queued,0,,",
    )
    breaks = _open(profile_a)
    assert set(breaks) == {
        (BreakKind.FIELD_MISMATCH, "e|ERP-1"),
        (BreakKind.STATUS_MISMATCH, "e|ERP-2"),
        (BreakKind.DUPLICATE_KEY, "e|ERP-9"),
        (BreakKind.MISSING_IN_PORTAL, "e|ERP-8"),
        (BreakKind.MISSING_IN_ERP, "e|ERP-3"),
    }
    field = breaks[(BreakKind.FIELD_MISMATCH, "e|ERP-1")]
    assert field.details["fields"] == {"progress": {"erp": 45.0, "portal": 40.0}}
    assert field.job_id == jobs_a["ERP-1"].pk
    assert breaks[(BreakKind.STATUS_MISMATCH, "e|ERP-2")].details["erp"] == "running"
    assert breaks[(BreakKind.DUPLICATE_KEY, "e|ERP-9")].details == {"side": "erp", "rows": [4, 5]}
    assert recon_run.counts == {
        "MISSING_IN_ERP": 1,
        "MISSING_IN_PORTAL": 1,
        "STATUS_MISMATCH": 1,
        "FIELD_MISMATCH": 1,
        "DUPLICATE_KEY": 1,
    }
    assert recon_run.input_hashes == [recon_run.file.sha256] and recon_run.config.version == 1


def test_defaults_accept_two_points_five_minutes_and_our_own_codes(profile_a, jobs_a):
    recon_run = _run(
        profile_a,
        "ERP-1,M1,MT1,,RUNNING,42,2026-11-30T08:04:59Z,",
        "ERP-2,M1,MT1,,succeeded,100,2026-11-30T07:55:00Z,",
        "ERP-3,M1,MT1,,queued,0,,",
    )
    assert sum(recon_run.counts.values()) == 0


def test_the_status_map_translates_the_erps_names(profile_a, jobs_a):
    services.save_config(profile_a, {"status_map": {"TAMAMLANDI": "succeeded"}}, author=None, reason="ERP adları")
    recon_run = _run(profile_a, "ERP-2,M1,MT1,,TAMAMLANDI,100,2026-11-30T08:00:00Z,")
    assert recon_run.counts["STATUS_MISMATCH"] == 0 and recon_run.config.version == 2


def test_a_rerun_updates_the_same_break_and_clears_it_when_the_difference_is_gone(profile_a, jobs_a):
    rest = ("ERP-2,M1,MT1,,succeeded,100,2026-11-30T08:00:00Z,", "ERP-3,M1,MT1,,queued,0,,")
    first = _run(profile_a, "ERP-1,M1,MT1,,running,50,2026-11-30T08:00:00Z,", *rest)
    brk = Break.objects.get(profile=profile_a, kind=BreakKind.FIELD_MISMATCH)
    second = _run(profile_a, "ERP-1,M1,MT1,,running,60,2026-11-30T08:00:00Z,", *rest)
    brk.refresh_from_db()
    assert Break.objects.filter(profile=profile_a).count() == 1
    assert brk.details["fields"]["progress"]["erp"] == 60.0
    assert (brk.first_run, brk.last_run) == (first, second)
    third = _run(profile_a, "ERP-1,M1,MT1,,running,40,2026-11-30T08:00:00Z,", *rest)
    brk.refresh_from_db()
    assert brk.state == BreakState.CLEARED and f"#{third.pk}" in brk.reason
    assert third.cleared_count == 1


def test_a_resolved_break_seen_again_reopens(profile_a, jobs_a, role_users):
    _run(profile_a, "ERP-1,M1,MT1,,running,40,2026-11-30T08:00:00Z,", "ERP-2,M1,MT1,,succeeded,100,,")
    brk = Break.objects.get(kind=BreakKind.MISSING_IN_ERP)
    services.resolve(brk, reason="ERP'ye sonra girilecek", actor=role_users["operator"])
    _run(profile_a, "ERP-1,M1,MT1,,running,40,2026-11-30T08:00:00Z,", "ERP-2,M1,MT1,,succeeded,100,,")
    brk.refresh_from_db()
    assert brk.state == BreakState.OPEN


def test_composite_keys_match_jobs_without_an_erp_id(profile_a, jobs_a):
    services.save_config(
        profile_a,
        {"key": {"prefer": "composite", "composite": ["machine", "model_type", "planned_start"]}},
        author=None,
        reason="bileşik anahtar",
    )
    Job.objects.exclude(external_id="ERP-1").delete()
    recon_run = _run(profile_a, ",M1,MT1,30.11.2026 11:00,running,40,30.11.2026 11:00,")  # Istanbul = 08:00 UTC
    assert sum(recon_run.counts.values()) == 0, list(Break.objects.values("kind", "key", "details"))


def test_two_portal_jobs_with_the_same_composite_key_are_a_duplicate(profile_a, jobs_a):
    services.save_config(
        profile_a,
        {"key": {"prefer": "composite", "composite": ["machine", "model_type"]}},
        author=None,
        reason="makine + model",
    )
    recon_run = _run(profile_a, ",M1,MT1,,running,40,,")
    assert recon_run.counts["DUPLICATE_KEY"] == 1
    brk = Break.objects.get(kind=BreakKind.DUPLICATE_KEY)
    assert brk.details["side"] == "portal" and len(brk.details["jobs"]) == 3


def test_a_rerun_with_an_old_version_reproduces_the_old_result(profile_a, jobs_a):
    rows = (
        "ERP-1,M1,MT1,,running,44,2026-11-30T08:00:00Z,",
        "ERP-2,M1,MT1,,succeeded,100,2026-11-30T08:00:00Z,",
        "ERP-3,M1,MT1,,queued,0,,",
    )
    old = _run(profile_a, *rows)
    assert old.counts["FIELD_MISMATCH"] == 1
    services.save_config(
        profile_a, {"tolerances": {"progress": {"abs": 5, "rel": 0}}}, author=None, reason="daha gevşek"
    )
    Job.objects.filter(external_id="ERP-3").update(progress=10)  # the portal moved on since
    newer = services.rerun(old, config=services.current_config(profile_a))
    assert newer.counts["FIELD_MISMATCH"] == 0
    again = services.rerun(old)
    assert again.config == old.config
    assert (again.counts, again.result_sha256) == (old.counts, old.result_sha256)


def test_runs_are_per_tenant(profile_a, profile_b, jobs_a):
    recon_run = _run(profile_b, "ERP-1,M1,MT1,,running,40,,")
    assert recon_run.counts["MISSING_IN_PORTAL"] == 1 and recon_run.counts["MISSING_IN_ERP"] == 0
    assert set(Break.objects.values_list("tenant_id", flat=True)) == {profile_b.tenant_id}
