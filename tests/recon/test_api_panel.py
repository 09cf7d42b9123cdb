"""The upload API, the panel's break queue and run history, the CSV export and the `recon_run` command."""

import csv
import io
import os
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from apps.recon import services
from apps.recon.models import Break, BreakKind, DropSighting, ReconFile, ReconRun
from tests.conftest import make_user, verified_client

from .conftest import csv_bytes, load

pytestmark = pytest.mark.django_db

ROWS = ("ERP-1,M1,MT1,,running,45,2026-11-30T08:00:00Z,", "=cmd|' /C calc'!A0,M1,MT1,,queued,0,,")


def _upload(client, profile, data=None, **extra):
    body = {"file": SimpleUploadedFile("export.csv", data or csv_bytes(*ROWS)), "profile": profile.pk, **extra}
    return client.post("/api/v1/recon/files", body, format="multipart", HTTP_IDEMPOTENCY_KEY=f"k-{time.time_ns()}")


def test_an_operator_uploads_and_the_file_is_reconciled(profile_a, jobs_a, role_users):
    client = verified_client(APIClient(), role_users["operator"])
    response = _upload(client, profile_a)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["file"]["rows"] == 2 and body["run"]["counts"]["MISSING_IN_PORTAL"] == 1
    assert ReconRun.objects.get(pk=body["run"]["id"]).started_by == role_users["operator"]


def test_the_same_upload_twice_is_a_409_pointing_at_the_first_then_force_loads_it(profile_a, jobs_a, role_users):
    client = verified_client(APIClient(), role_users["operator"])
    first = _upload(client, profile_a).json()["file"]["id"]
    again = _upload(client, profile_a)
    assert again.status_code == 409
    assert again["Content-Type"] == "application/problem+json"
    assert again.json()["first"]["id"] == first
    forced = _upload(client, profile_a, force="true")
    assert forced.status_code == 201 and forced.json()["file"]["duplicate_of"] == first


def test_a_bad_file_is_a_422_with_rows_and_columns(profile_a, role_users):
    client = verified_client(APIClient(), role_users["operator"])
    response = _upload(client, profile_a, data=b"external_id,status,progress\nA,running,x\n")
    assert response.status_code == 422
    assert response.json()["errors"][0]["column"] == "C"


def test_an_analyst_may_not_upload_and_nobody_uploads_for_another_tenant(profile_a, profile_b, role_users):
    analyst = verified_client(APIClient(), role_users["analyst"])
    assert _upload(analyst, profile_a).status_code == 403
    operator = verified_client(APIClient(), role_users["operator"])
    assert _upload(operator, profile_b).status_code == 404
    assert not ReconFile.objects.exists()


def test_the_idempotency_key_replays_the_first_answer(profile_a, jobs_a, role_users):
    client = verified_client(APIClient(), role_users["operator"])
    data = csv_bytes(*ROWS)
    kw = {"format": "multipart", "HTTP_IDEMPOTENCY_KEY": "same-key"}
    first = client.post(
        "/api/v1/recon/files", {"file": SimpleUploadedFile("e.csv", data), "profile": profile_a.pk}, **kw
    )
    second = client.post(
        "/api/v1/recon/files", {"file": SimpleUploadedFile("e.csv", data), "profile": profile_a.pk}, **kw
    )
    assert first.status_code == 201
    assert second.status_code in (201, 422)  # multipart boundaries differ per request: same key, other body
    assert ReconFile.objects.count() == 1


def test_the_break_queue_is_turkish_filtered_in_the_url_and_tenant_scoped(
    client, profile_a, profile_b, jobs_a, role_users
):
    services.run(load(profile_a, csv_bytes(*ROWS)))
    services.run(load(profile_b, csv_bytes("B-ONLY,M1,MT1,,queued,0,,")))
    verified_client(client, role_users["analyst"])
    page = client.get("/panel/recon/breaks/?kind=MISSING_IN_ERP")
    assert page.status_code == 200
    text = page.content.decode()
    assert "Mutabakat farkları" in text and "e|ERP-3" in text and "e|ERP-1" not in text
    assert "B-ONLY" not in client.get("/panel/recon/breaks/").content.decode()
    assert 'name="breaks"' not in text  # analysts read; no bulk assignment
    assert client.get("/panel/recon/breaks/?kind=NOPE").status_code == 400


def test_bulk_assign_from_the_queue(client, profile_a, jobs_a, role_users):
    services.run(load(profile_a, csv_bytes(*ROWS)))
    operator = role_users["operator"]
    verified_client(client, operator)
    ids = list(Break.objects.values_list("pk", flat=True))
    response = client.post("/panel/recon/breaks/?state=open", {"breaks": ids, "assignee": operator.username})
    assert response.status_code == 302 and response["Location"] == "/panel/recon/breaks/?state=open"
    assert set(Break.objects.values_list("assignee", flat=True)) == {operator.pk}
    analyst_client = verified_client(type(client)(), role_users["analyst"])
    assert analyst_client.post("/panel/recon/breaks/", {"breaks": ids, "assignee": ""}).status_code == 403


def test_the_runs_csv_is_formula_safe_and_scoped(client, profile_a, profile_b, jobs_a, role_users, tenant_b):
    recon_run = services.run(load(profile_a, csv_bytes(*ROWS)))
    verified_client(client, role_users["analyst"])
    assert f"#{recon_run.pk}" in client.get("/panel/recon/runs/").content.decode()
    response = client.get(f"/panel/recon/runs/{recon_run.pk}/breaks.csv")
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    keys = {row[1] for row in rows[1:]}
    assert "'e|=cmd|' /C calc'!A0" not in keys and "e|=cmd|' /C calc'!A0" in keys  # 'e|' first: no trigger
    ext_ids = {row[2] for row in rows[1:]}
    assert "'=cmd|' /C calc'!A0" in ext_ids  # the ERP id cell itself is quoted
    stranger = verified_client(type(client)(), make_user("analyst_b", roles=["analyst"], tenants=[tenant_b]))
    assert stranger.get(f"/panel/recon/runs/{recon_run.pk}/breaks.csv").status_code == 404


def test_the_command_loads_runs_and_refuses_a_duplicate(tmp_path, profile_a, jobs_a, capsys):
    path = tmp_path / "export.csv"
    path.write_bytes(csv_bytes(*ROWS))
    call_command("recon_run", "--profile", str(profile_a.pk), "--file", str(path))
    out = capsys.readouterr()
    assert "run #" in out.out and "loaded 2 rows" in out.err
    with pytest.raises(CommandError, match="registered before"):
        call_command("recon_run", "--profile", "ERP A", "--file", str(path))
    call_command("recon_run", "--profile", "ERP A", "--file", str(path), "--force")
    assert ReconRun.objects.count() == 2


def test_drop_folders_pick_up_only_files_that_hold_still_or_are_marked_done(tmp_path, settings, profile_a, jobs_a):
    settings.ERP_DROP_DIRS = [str(tmp_path)]
    folder = tmp_path / "anadolu"
    folder.mkdir()
    services.save_config(profile_a, {"drop_dirs": [str(folder)]}, author=None, reason="drop folder")
    growing = folder / "growing.csv"
    growing.write_bytes(csv_bytes(ROWS[0]))
    assert services.poll_drop_folders().waiting == 1
    growing.write_bytes(csv_bytes(*ROWS))  # still being written: size changed
    os.utime(growing, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert services.poll_drop_folders().picked == 0
    result = services.poll_drop_folders()  # unchanged since the last poll: stable
    assert result.picked == 1
    assert (folder / "processed" / "growing.csv").exists() and not DropSighting.objects.exists()
    marked = folder / "marked.csv"
    marked.write_bytes(csv_bytes("ERP-1,M1,MT1,,running,40,2026-11-30T08:00:00Z,"))
    (folder / "marked.csv.done").write_text("")
    assert services.poll_drop_folders().picked == 1  # the marker: no second poll needed
    assert ReconRun.objects.count() == 2
    assert Break.objects.filter(kind=BreakKind.FIELD_MISMATCH, state="cleared").exists()


def test_a_drop_folder_outside_erp_drop_dirs_is_refused(tmp_path, settings, profile_a):
    settings.ERP_DROP_DIRS = [str(tmp_path / "allowed")]
    with pytest.raises(Exception, match="ERP_DROP_DIRS"):
        services.save_config(profile_a, {"drop_dirs": ["/etc"]}, author=None, reason="x")


def _large_export(rows: int, pad: int) -> bytes:
    """A valid export of `rows` rows, each made large by spaces in its model type (stripped when read)."""
    lines = [f"ERP-{i},M1,{' ' * pad}MT1,,running,40,2026-11-30T08:00:00Z," for i in range(1, rows + 1)]
    return csv_bytes(*lines)


def test_a_keyed_50_mb_upload_is_hashed_in_chunks_and_replayed(profile_a, jobs_a, role_users, settings):
    """The Idempotency-Key middleware hashes a multipart body on its way to a temporary file: a 50 MB upload
    (20 times DATA_UPLOAD_MAX_MEMORY_SIZE) works with a key, the same body again is the stored answer, and
    a different body with that key is the 422 it always was."""
    import tracemalloc

    from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart

    client = verified_client(APIClient(), role_users["operator"])
    data = _large_export(500, 100_000)
    assert len(data) > 50_000_000
    body = encode_multipart(BOUNDARY, {"file": SimpleUploadedFile("big.csv", data), "profile": profile_a.pk})
    del data

    def post(payload, key):
        return client.generic(
            "POST", "/api/v1/recon/files", payload, content_type=MULTIPART_CONTENT, HTTP_IDEMPOTENCY_KEY=key
        )

    tracemalloc.start()
    try:
        first = post(body, "big-upload")
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert first.status_code == 201, first.content[:500]
    assert first.json()["file"]["rows"] == 500 and first.json()["run"]["counts"]["MISSING_IN_PORTAL"] == 497
    # The test client's own copy of the body is 50 MB; reading it whole (request.body) would add 50 more.
    assert peak < len(body) * 1.5, peak
    again = post(body, "big-upload")
    assert again.status_code == 201 and again["Idempotent-Replayed"] == "true"
    assert again.content == first.content and ReconFile.objects.count() == 1
    other = body.replace(b"ERP-500,", b"ERP-501,")
    assert other != body
    refused = post(other, "big-upload")
    assert refused.status_code == 422 and refused.json()["type"].endswith("idempotency-key-reused")
    assert ReconFile.objects.count() == 1


def test_a_retried_upload_with_a_fresh_multipart_boundary_is_the_stored_answer(profile_a, jobs_a, role_users):
    """requests, curl and browsers pick a new random boundary for every request: a client retrying the same upload
    with the same key gets the first answer back, not a 422 for a different body."""
    from django.test.client import encode_multipart

    client = verified_client(APIClient(), role_users["operator"])
    fields = {"file": SimpleUploadedFile("export.csv", csv_bytes(*ROWS)), "profile": profile_a.pk}

    def post(boundary, key="retried-upload"):
        fields["file"].seek(0)
        return client.generic(
            "POST",
            "/api/v1/recon/files",
            encode_multipart(boundary, fields),
            content_type=f"multipart/form-data; boundary={boundary}",
            HTTP_IDEMPOTENCY_KEY=key,
        )

    first = post("a1b2c3d4e5f60718293a4b5c6d7e8f90")
    assert first.status_code == 201, first.content[:500]
    retried = post("0f9e8d7c6b5a49382716f5e4d3c2b1a0")
    assert retried.status_code == 201 and retried["Idempotent-Replayed"] == "true"
    assert retried.content == first.content and ReconFile.objects.count() == 1
    fields["profile"] = f"{profile_a.pk} "  # a different field value: a different body, whatever the boundary
    assert post("a1b2c3d4e5f60718293a4b5c6d7e8f90").status_code == 422
