"""Config versions (author, reason, diff, audit), the admin's upload, break actions and tenant scoping."""

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from apps.audit.models import AuditLog
from apps.recon import services
from apps.recon.models import Break, BreakState, ReconConfig, ReconFile, ReconRun
from tests.conftest import make_user, verified_client

from .conftest import csv_bytes, load

pytestmark = pytest.mark.django_db

ROWS = ("ERP-1,M1,MT1,,running,45,2026-11-30T08:00:00Z,",)


def test_each_change_is_a_new_version_with_author_reason_and_an_audited_diff(profile_a, role_users):
    admin_user = role_users["admin"]
    first = services.current_config(profile_a)
    second = services.save_config(
        profile_a, {"tolerances": {"progress": {"abs": 5, "rel": 0}}}, author=admin_user, reason="ERP yuvarlıyor"
    )
    assert (first.version, second.version) == (1, 2)
    assert second.author == admin_user and second.reason == "ERP yuvarlıyor"
    assert ReconConfig.objects.get(pk=first.pk).data["tolerances"]["progress"]["abs"] == 2  # old one untouched
    entry = AuditLog.objects.get(action="recon.config_changed", object_id=str(second.pk))
    assert '-      "abs": 2' in entry.payload["diff"] and '+      "abs": 5' in entry.payload["diff"]
    with pytest.raises(ValidationError):
        services.save_config(profile_a, {"tolerances": {}}, author=admin_user, reason=" ")
    with pytest.raises(ValidationError):
        services.save_config(profile_a, {"nonsense": 1}, author=admin_user, reason="x")


def test_the_admin_adds_a_version_and_shows_its_diff(client, profile_a, role_users):
    verified_client(client, role_users["admin"])
    services.current_config(profile_a)
    response = client.post(
        "/admin/recon/reconconfig/add/",
        {"profile": profile_a.pk, "data": '{"status_map": {"BİTTİ": "succeeded"}}', "reason": "yeni ERP durumu"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    version = ReconConfig.objects.get(profile=profile_a, version=2)
    page = client.get(f"/admin/recon/reconconfig/{version.pk}/change/").content.decode()
    assert "BİTTİ" in page and "+" in page


def test_the_admin_upload_points_at_the_first_file_then_loads_when_forced(
    client, profile_a, jobs_a, role_users, django_capture_on_commit_callbacks
):
    verified_client(client, role_users["operator"])
    data = csv_bytes(*ROWS)
    form = {"profile": profile_a.pk, "encoding": "", "delimiter": "", "run_now": "on"}
    with django_capture_on_commit_callbacks(execute=True):
        first = client.post("/admin/recon/reconfile/add/", {**form, "upload": SimpleUploadedFile("e.csv", data)})
    entry = ReconFile.objects.get()
    assert first.status_code == 302 and first["Location"] == f"/admin/recon/reconfile/{entry.pk}/change/"
    again = client.post("/admin/recon/reconfile/add/", {**form, "upload": SimpleUploadedFile("e.csv", data)})
    assert again.status_code == 200 and f"/admin/recon/reconfile/{entry.pk}/change/" in again.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        forced = client.post(
            "/admin/recon/reconfile/add/", {**form, "force": "on", "upload": SimpleUploadedFile("e.csv", data)}
        )
    assert forced.status_code == 302 and ReconFile.objects.count() == 2
    assert client.get(f"/admin/recon/reconfile/{entry.pk}/change/").status_code == 200
    assert set(ReconFile.objects.values_list("status", flat=True)) == {"loaded"}
    assert ReconRun.objects.filter(file__in=ReconFile.objects.all()).count() == 2


def test_the_admin_upload_returns_before_loading_and_its_page_shows_the_progress(
    client, profile_a, jobs_a, role_users, django_capture_on_commit_callbacks, settings, tmp_path
):
    """The request stores the bytes and answers at once; the worker's progress shows on the file's page."""
    settings.STORAGES = {
        **settings.STORAGES,
        "recon_uploads": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": tmp_path}},
    }
    verified_client(client, role_users["operator"])
    form = {"profile": profile_a.pk, "encoding": "", "delimiter": "", "run_now": "on"}
    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = client.post(
            "/admin/recon/reconfile/add/", {**form, "upload": SimpleUploadedFile("e.csv", csv_bytes(*ROWS))}
        )
    entry = ReconFile.objects.get()
    assert response.status_code == 302 and entry.status == "loading" and entry.row_count == 0
    assert len(list(tmp_path.iterdir())) == 1  # the bytes wait for the worker
    page = client.get(f"/admin/recon/reconfile/{entry.pk}/change/").content.decode()
    assert '<meta http-equiv="refresh" content="2">' in page and "<progress" in page
    services._set_progress(entry.pk, "loading", rows=10000, percent=40)
    page = client.get(f"/admin/recon/reconfile/{entry.pk}/change/").content.decode()
    assert 'max="100" value="40"' in page and "10000" in page
    assert len(queued) == 1
    queued[0]()  # the worker (eager Celery in the tests)
    entry.refresh_from_db()
    recon_run = ReconRun.objects.get(file=entry)
    assert entry.status == "loaded" and entry.row_count == 1 and recon_run.counts["FIELD_MISMATCH"] == 1
    assert list(tmp_path.iterdir()) == []  # staged now; the kept bytes are gone
    page = client.get(f"/admin/recon/reconfile/{entry.pk}/change/").content.decode()
    assert "refresh" not in page and f"/admin/recon/reconrun/{recon_run.pk}/change/" in page
    queued[0]()  # a redelivered task leaves the loaded file alone
    assert ReconRun.objects.filter(file=entry).count() == 1


def test_admin_break_actions_take_the_reason_typed_above(client, profile_a, jobs_a, role_users):
    services.run(load(profile_a, csv_bytes(*ROWS)))
    verified_client(client, role_users["operator"])
    ids = [str(pk) for pk in Break.objects.values_list("pk", flat=True)]
    response = client.post(
        "/admin/recon/break/", {"action": "resolve", "_selected_action": ids, "reason": "ERP düzeltildi"}
    )
    assert response.status_code == 302
    assert set(Break.objects.values_list("state", "reason")) == {(BreakState.RESOLVED, "ERP düzeltildi")}


def test_admin_and_api_reads_are_tenant_scoped(client, profile_a, profile_b, jobs_a, role_users, tenant_b):
    recon_run = services.run(load(profile_a, csv_bytes(*ROWS)))
    other = make_user("operator_b", roles=["operator"], tenants=[tenant_b])
    verified_client(client, other)
    assert "e|ERP-1" not in client.get("/admin/recon/break/").content.decode()
    brk = Break.objects.filter(profile=profile_a).first()
    assert client.get(f"/admin/recon/break/{brk.pk}/change/").status_code == 302  # "doesn't exist"
    api = verified_client(APIClient(), other)
    assert api.get(f"/api/v1/recon/runs/{recon_run.pk}").status_code == 404
    own = verified_client(APIClient(), role_users["analyst"])
    body = own.get(f"/api/v1/recon/runs/{recon_run.pk}").json()
    assert body["config_version"] == 1 and body["input_hashes"] == [recon_run.file.sha256]


def test_a_new_version_carries_over_the_items_it_does_not_name(profile_a):
    services.save_config(profile_a, {"status_map": {"BİTTİ": "succeeded"}}, author=None, reason="durum")
    third = services.save_config(profile_a, {"tolerances": {"progress": {"abs": 3, "rel": 0}}}, author=None, reason="x")
    assert third.data["status_map"] == {"BİTTİ": "succeeded"} and third.data["tolerances"]["progress"]["abs"] == 3
