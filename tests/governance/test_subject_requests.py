"""Data subject requests: dry run, packages, rectification, restriction, erasure by crypto-shredding, legal holds."""

import hashlib
import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection, transaction

from apps.audit import services as audit_services
from apps.audit import signatures, subject_keys
from apps.audit.db_verification import verify_database
from apps.audit.models import AuditLog
from apps.governance import services as hold_services
from apps.governance import subject_requests
from apps.governance.models import HoldScope
from apps.reporting.models import ReportExport
from tests.audit.test_export_and_offline_verifier import _offline_verify
from tests.conftest import make_user, verified_client

EMAIL = "sule.yildiz@example.com"
G = "/api/enterprise/governance"


@pytest.fixture
def subject(db):
    user = make_user("sule")
    user.email, user.first_name = EMAIL, "Şule"
    user.save()
    return user


def _changed_email(subject, actor=None, n=1):
    with transaction.atomic():
        for _ in range(n):
            audit_services.record(actor, "admin.change", subject, {"fields": {"email": ["old@example.com", EMAIL]}})
    audit_services.seal_pending()


def _payload_texts():
    with connection.cursor() as cursor:
        cursor.execute("SELECT payload FROM audit_logs")
        return " ".join(str(row[0]) for row in cursor.fetchall())


@pytest.mark.django_db
def test_personal_values_about_a_user_are_stored_encrypted_and_readable_until_erased(subject):
    _changed_email(subject)
    entry = AuditLog.objects.get(action="admin.change")
    assert EMAIL not in json.dumps(entry.payload)
    assert subject_keys.reveal(entry.payload)["fields"]["email"] == ["old@example.com", EMAIL]
    assert EMAIL not in _payload_texts()


@pytest.mark.django_db
def test_a_request_is_due_in_30_days_and_its_dry_run_lists_every_row(subject, superuser):
    _changed_email(subject, actor=subject)
    export = ReportExport.objects.create(requested_by=subject, format="csv", filters={})
    req = subject_requests.create_request(superuser, request_type="erasure", subject_id=subject.pk)
    assert req.due_at - req.created_at == timedelta(days=30)
    dry = subject_requests.process(req, superuser, dry_run=True)
    assert dry["rows"]["accounts.user"] == [subject.pk]
    assert dry["rows"]["reporting.reportexport"] == [str(export.pk)]
    about = AuditLog.objects.filter(object_type="accounts.user", object_id=str(subject.pk)).count()
    assert len(dry["rows"]["audit.auditlog"]) == about + 1 >= 2, "entries about the subject and their request"
    req.refresh_from_db()
    assert req.status == "pending" and ReportExport.objects.exists(), "a dry run changes nothing"


@pytest.mark.django_db
def test_an_access_package_has_json_and_formula_safe_csv_per_table_with_a_manifest(subject, superuser, exports_storage):
    subject.last_name = "=HYPERLINK(1)"
    subject.save()
    _changed_email(subject)
    req = subject_requests.create_request(superuser, request_type="portability", subject_id=subject.pk)
    result = subject_requests.process(req, superuser)
    names = {f["name"].rsplit("/", 1)[-1] for f in result["files"]}
    assert {"package.json", "accounts.user.csv", "audit.auditlog.csv"} <= names
    for f in result["files"]:
        assert hashlib.sha256((exports_storage / f["name"]).read_bytes()).hexdigest() == f["sha256"]
    package = json.loads((exports_storage / f"governance/requests/{req.pk}/package.json").read_text())
    assert package["tables"]["accounts.user"][0]["email"] == EMAIL
    audit_rows = package["tables"]["audit.auditlog"]
    assert any(r["payload"].get("fields", {}).get("email") == ["old@example.com", EMAIL] for r in audit_rows)
    csv_text = (exports_storage / f"governance/requests/{req.pk}/accounts.user.csv").read_text()
    assert "'=HYPERLINK(1)" in csv_text, "the formula-safe writer neutralised the cell"


@pytest.mark.django_db
def test_erasure_of_a_subject_across_several_batches_of_audit_entries_keeps_the_chain_verifiable(
    subject, superuser, settings, tmp_path, _signing_key
):
    # Two full batches and one more entry: every batch boundary of the erasure is crossed (10 000 took a minute).
    entries = 2 * subject_requests.BATCH + 1
    _changed_email(subject, n=entries)
    audit_services.make_checkpoint(force=True)
    req = subject_requests.create_request(superuser, request_type="erasure", subject_id=subject.pk)
    result = subject_requests.process(req, superuser)
    assert result["counts"]["audit.auditlog"] >= entries
    audit_services.seal_pending()
    audit_services.make_checkpoint(force=True)
    assert verify_database(public_key=_signing_key.public_key()).ok
    subject.refresh_from_db()
    assert subject.username == result["pseudonym"] and subject.email == "" and not subject.is_active
    entry = AuditLog.objects.filter(action="admin.change").first()
    assert subject_keys.reveal(entry.payload)["fields"]["email"] == [
        {"$erased": result["pseudonym"]},
        {"$erased": result["pseudonym"]},
    ]
    assert EMAIL not in _payload_texts()
    out = tmp_path / "audit.jsonl"
    call_command("export_audit", output=str(out))
    assert EMAIL not in out.read_text() and "Şule" not in out.read_text()
    public = signatures.public_pem(_signing_key.public_key())
    verified = _offline_verify(out, public)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    # New entries about the erased subject record their personal values as erased, never readable again.
    _changed_email(subject)
    latest = AuditLog.objects.filter(action="admin.change").order_by("-id").first()
    assert subject_keys.reveal(latest.payload)["fields"]["email"][1] == {"$erased": result["pseudonym"]}


@pytest.mark.django_db
def test_a_subject_under_legal_hold_is_refused_with_the_hold_named(subject, superuser, client):
    hold = hold_services.place_hold(None, scope=HoldScope.SUBJECT, subject_id=str(subject.pk), reason="case 9")
    api = verified_client(client, superuser)
    created = api.post(f"{G}/data-requests", {"request_type": "erasure", "subject_id": str(subject.pk),
                                              "subject_email": EMAIL}, content_type="application/json")  # fmt: skip
    assert created.status_code == 201, created.content
    refused = api.post(f"{G}/data-requests/{created.json()['id']}/process", {}, content_type="application/json")
    assert refused.status_code == 409 and refused.json()["hold"] == hold.pk
    assert "case 9" in refused.json()["detail"]
    subject.refresh_from_db()
    assert subject.email == EMAIL, "nothing was erased"
    listed = api.get(f"{G}/data-requests").json()["results"]
    assert listed[0]["status"] == "refused"


@pytest.mark.django_db
def test_rectification_and_restriction(subject, superuser, client):
    api = verified_client(client, superuser)
    body = {"request_type": "rectification", "subject_id": str(subject.pk), "changes": {"first_name": "Sule"}}
    created = api.post(f"{G}/data-requests", body, content_type="application/json").json()
    done = api.post(f"{G}/data-requests/{created['id']}/process", {}, content_type="application/json")
    assert done.status_code == 200 and done.json()["fields"] == ["first_name"]
    subject.refresh_from_db()
    assert subject.first_name == "Sule"
    bad = api.post(f"{G}/data-requests", {**body, "changes": {"is_superuser": "1"}}, content_type="application/json")
    assert bad.status_code == 422
    req = subject_requests.create_request(superuser, request_type="restriction", subject_id=subject.pk)
    subject_requests.process(req, superuser)
    subject.refresh_from_db()
    assert not subject.is_active


@pytest.mark.django_db
def test_a_tenant_admin_reaches_only_users_they_manage(client, role_users, tenant_b):
    outsider = make_user("outsider", tenants=[tenant_b])
    api = verified_client(client, role_users["admin"])
    answer = api.post(f"{G}/data-requests", {"request_type": "access", "subject_id": str(outsider.pk)},
                      content_type="application/json")  # fmt: skip
    assert answer.status_code == 422


@pytest.mark.django_db
def test_the_audit_log_api_shows_personal_values_until_the_subject_is_erased(subject, superuser, client):
    _changed_email(subject)
    api = verified_client(client, superuser)
    entry = api.get("/api/enterprise/audit/logs", {"action": "admin.change"}).json()["results"][0]
    assert entry["payload"]["fields"]["email"][1] == EMAIL
    req = subject_requests.create_request(superuser, request_type="erasure", subject_id=subject.pk)
    pseudonym = subject_requests.process(req, superuser)["pseudonym"]
    entry = api.get("/api/enterprise/audit/logs", {"action": "admin.change"}).json()["results"][0]
    assert entry["payload"]["fields"]["email"][1] == {"$erased": pseudonym}


@pytest.mark.django_db
def test_entries_from_before_crypto_shredding_are_named_as_not_erasable(subject, superuser, settings):
    settings.GDPR_COMPLIANCE_MODE = False  # as before the upgrade: values stored in plain text
    _changed_email(subject)
    old = AuditLog.objects.get(action="admin.change")
    settings.GDPR_COMPLIANCE_MODE = True
    _changed_email(subject)
    req = subject_requests.create_request(superuser, request_type="erasure", subject_id=subject.pk)
    assert subject_requests.process(req, superuser, dry_run=True)["audit_plaintext"] == [old.pk]
    assert subject_requests.process(req, superuser)["audit_plaintext"] == [old.pk]
