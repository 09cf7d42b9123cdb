import csv
import hashlib
import io
import json

import pytest

from apps.audit import services, signatures
from apps.audit.models import AuditLog
from tests.audit.test_export_and_offline_verifier import _offline_verify
from tests.conftest import verified_client

URL = "/forensics/audit/export"


def _chain(tenant_id=None):
    for i in range(5):
        action = "login" if i % 2 else "job.status.changed"
        services.record(("user", "7"), action, None, {"i": i, "not": "İş"}, tenant_id=tenant_id)
    services.seal_pending()
    services.make_checkpoint(force=True)


def _body(response):
    return b"".join(response.streaming_content)


@pytest.mark.django_db
def test_an_auditor_streams_a_json_export_that_verifies_offline_and_is_itself_audited(
    client, role_users, tmp_path, signing_key
):
    _chain()
    verified_client(client, role_users["auditor"])
    response = client.get(URL, {"action": "login"})
    assert response.status_code == 200 and response["Content-Type"] == "application/x-ndjson"
    body = _body(response)
    path = tmp_path / "export.jsonl"
    path.write_bytes(body)
    result = _offline_verify(path, signatures.public_pem(signing_key.public_key()))
    assert result.returncode == 0, result.stdout + result.stderr
    entry = AuditLog.objects.get(action="audit.exported")
    assert entry.payload["sha256"] == hashlib.sha256(body).hexdigest()
    assert entry.payload["filters"] == {"action": "login"}
    assert entry.actor_id == str(role_users["auditor"].pk)


@pytest.mark.django_db
def test_a_csv_export_has_every_row_with_its_hashes(client, role_users, tenant_a):
    _chain(tenant_id=tenant_a.pk)  # the admin's own tenant: a tenant admin reads no tenant-less entries
    verified_client(client, role_users["admin"])
    response = client.get(URL, {"format": "csv"})
    rows = list(csv.DictReader(io.StringIO(_body(response).decode())))
    entries = [r for r in rows if r["type"] == "entry"]
    assert [int(r["seq"]) for r in entries] == [1, 2, 3, 4, 5]
    assert all(len(r["chain_hash"]) == 64 and len(r["prev_hash"]) == 64 for r in entries)
    assert json.loads(entries[0]["payload"])["not"] == "İş"
    assert [r["type"] for r in rows][-2:] == ["checkpoint", "end"]


@pytest.mark.django_db
def test_operators_may_not_export_the_audit_trail(client, role_users):
    verified_client(client, role_users["operator"])
    response = client.get(URL)
    assert response.status_code == 403
    assert response["Content-Type"] == "application/problem+json"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "params",
    [{"format": "xml"}, {"date_from": "yesterday"}, {"date_from": "2026-11-02T00:00Z", "date_to": "2026-11-01T00:00Z"}],
)
def test_bad_filters_are_a_422_problem(client, role_users, params):
    verified_client(client, role_users["auditor"])
    response = client.get(URL, params)
    assert response.status_code == 422
    assert response.json()["type"] == "urn:tezgah:problem:validation-error"
