"""Retention of recon's bulk rows: a file's staged rows and a run's portal snapshot go once old, unless an open
break, a running run or a re-run still needs them; tenant holds keep them; runs, files and breaks stay."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.governance import constants, retention, services
from apps.governance.models import HoldScope
from apps.recon import services as recon
from apps.recon.models import Break, PortalRow, ReconFile, ReconRun, StagedRow
from tests.recon import conftest as recon_fixtures
from tests.recon.conftest import csv_bytes, load

profile_a, jobs_a = recon_fixtures.profile_a, recon_fixtures.jobs_a  # the fixtures

pytestmark = pytest.mark.django_db

MATCHING = (
    "ERP-1,M1,MT1,,running,40,2026-11-30T08:00:00Z,",
    "ERP-2,M1,MT1,,succeeded,100,2026-11-30T08:00:00Z,",
    "ERP-3,M1,MT1,,queued,0,,",
)


def _run(profile, *rows):
    entry = load(profile, csv_bytes(*rows), force=True)
    assert entry.status == "loaded", entry.errors
    return recon.run(entry)


def _age_everything():
    old = timezone.now() - timedelta(days=400)
    ReconFile.objects.update(created_at=old)
    ReconRun.objects.update(started_at=old)


def _dry(name):
    return next(r for r in retention.dry_run() if r["data_class"] == name)["count"]


def test_old_staged_rows_and_snapshots_go_unless_an_open_break_needs_them(profile_a, jobs_a):
    clean = _run(profile_a, *MATCHING)
    with_break = _run(profile_a, "ERP-1,M1,MT1,,running,55,2026-11-30T08:00:00Z,", *MATCHING[1:])
    assert Break.objects.filter(state="open", last_run=with_break).exists()
    _age_everything()
    assert _dry(constants.RECON_STAGED_ROWS) == 3 and _dry(constants.RECON_SNAPSHOTS) == 3
    assert retention.apply_class(constants.RECON_STAGED_ROWS, batch=2).deleted == 3
    assert retention.apply_class(constants.RECON_SNAPSHOTS, batch=2).deleted == 3
    assert not StagedRow.objects.filter(file=clean.file).exists()
    assert StagedRow.objects.filter(file=with_break.file).count() == 3, "the open break's evidence stays"
    assert not PortalRow.objects.filter(run=clean).exists()
    assert PortalRow.objects.filter(run=with_break).count() == 3
    assert ReconRun.objects.count() == 2 and ReconFile.objects.count() == 2, "history stays"
    assert ReconRun.objects.get(pk=clean.pk).counts == clean.counts, "a run keeps its counts"


def test_recent_runs_running_runs_and_held_tenants_keep_their_rows(profile_a, jobs_a, tenant_a):
    recent = _run(profile_a, *MATCHING)
    assert _dry(constants.RECON_STAGED_ROWS) == 0, "recent: nothing goes"
    _age_everything()
    ReconRun.objects.filter(pk=recent.pk).update(status="running")
    assert _dry(constants.RECON_STAGED_ROWS) == 0 and _dry(constants.RECON_SNAPSHOTS) == 0, "a running run"
    ReconRun.objects.filter(pk=recent.pk).update(status="done")
    hold = services.place_hold(None, scope=HoldScope.TENANT, tenant=tenant_a, reason="dispute with the customer")
    assert retention.apply_class(constants.RECON_STAGED_ROWS).deleted == 0
    assert retention.apply_class(constants.RECON_SNAPSHOTS).deleted == 0
    services.lift_hold(hold, None, reason="settled")
    assert retention.apply_class(constants.RECON_STAGED_ROWS).deleted == 3
    assert retention.apply_class(constants.RECON_SNAPSHOTS).deleted == 3


def test_a_snapshot_a_rerun_compares_against_stays(profile_a, jobs_a):
    first = _run(profile_a, *MATCHING)
    again = ReconRun.objects.create(
        tenant=first.tenant, profile=first.profile, config=first.config, file=first.file, snapshot_of=first,
        status="done",
    )  # fmt: skip
    _age_everything()
    assert retention.apply_class(constants.RECON_SNAPSHOTS).deleted == 0
    assert PortalRow.objects.filter(run=first).count() == 3
    assert again.snapshot_of_id == first.pk
