"""Audit reads are tenant-scoped: a tenant admin reads only its tenants' entries, tenant-less ones go to
superusers and auditors (audit.view_tenantless_entries); the scoped export still verifies offline (issue 11)."""

import json

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from apps.audit import selectors, services, signatures
from apps.audit.models import AuditLog
from tests.audit.test_export_and_offline_verifier import _offline_verify
from tests.conftest import make_user, verified_client

pytestmark = pytest.mark.django_db

URL = "/forensics/audit/export"
B_IP = "203.0.113.77"


@pytest.fixture
def entries(tenant_a, tenant_b):
    """One entry of tenant A, one of tenant B and one of no tenant (a sign-in), sealed and checkpointed."""
    made = {
        "a": services.record(("user", "1"), "job.status.changed", None, {"job": "A-1"}, tenant_id=tenant_a.pk),
        "b": services.record(("erp", "9"), "erp.inbound.applied", None, {"ip": B_IP}, tenant_id=tenant_b.pk),
        "none": services.record(("user", "2"), "auth.login", None, {"method": "totp", "ip": B_IP}),
    }
    services.seal_pending()
    services.make_checkpoint(force=True)
    return {k: AuditLog.objects.get(pk=v.pk) for k, v in made.items()}


def export(client, tmp_path, **params):
    response = client.get(URL, params)
    assert response.status_code == 200
    body = b"".join(response.streaming_content)
    path = tmp_path / "export.jsonl"
    path.write_bytes(body)
    return path, [json.loads(line) for line in body.decode().splitlines()]


def full_seqs(lines) -> set[int]:
    return {line["seq"] for line in lines if line.get("type") == "entry"}


def stub_seqs(lines) -> set[int]:
    return {line["seq"] for line in lines if line.get("type") == "hash"}


def test_a_tenant_admins_export_holds_only_its_tenants_entries_and_still_verifies(
    client, role_users, entries, tmp_path, signing_key
):
    verified_client(client, role_users["admin"])

    path, lines = export(client, tmp_path)

    assert full_seqs(lines) == {entries["a"].seq}
    assert stub_seqs(lines) == {entries["b"].seq, entries["none"].seq}
    assert B_IP not in path.read_text()
    assert lines[0]["filters"] == {"tenants": str(entries["a"].tenant_id), "tenantless": "excluded"}
    assert lines[-1] == {"type": "end", "entries": 1, "hashes": 2}
    result = _offline_verify(path, signatures.public_pem(signing_key.public_key()))
    assert result.returncode == 0, result.stdout + result.stderr


def test_an_auditor_also_reads_the_tenantless_entries_but_not_another_tenants(
    client, role_users, entries, tmp_path, signing_key
):
    verified_client(client, role_users["auditor"])

    path, lines = export(client, tmp_path)

    assert full_seqs(lines) == {entries["a"].seq, entries["none"].seq}
    assert stub_seqs(lines) == {entries["b"].seq}
    assert lines[0]["filters"]["tenantless"] == "included"
    assert _offline_verify(path, signatures.public_pem(signing_key.public_key())).returncode == 0


def test_a_superuser_reads_every_entry(client, superuser, entries, tmp_path):
    verified_client(client, superuser)

    _path, lines = export(client, tmp_path)

    assert full_seqs(lines) == {e.seq for e in entries.values()}
    assert lines[0]["filters"] == {"tenants": "all", "tenantless": "included"}


def test_filters_and_scope_combine(client, role_users, entries, tmp_path):
    verified_client(client, role_users["auditor"])

    _path, lines = export(client, tmp_path, action="erp.inbound.applied")

    assert full_seqs(lines) == set()  # tenant B's: the filter matches it, the scope does not


def test_a_csv_export_is_scoped_too(client, role_users, entries):
    verified_client(client, role_users["admin"])

    body = b"".join(client.get(URL, {"format": "csv"}).streaming_content).decode()

    assert B_IP not in body and "auth.login" not in body and "job.status.changed" in body


def test_the_export_entry_records_the_scope(client, role_users, entries, tmp_path):
    verified_client(client, role_users["admin"])

    export(client, tmp_path)

    exported = AuditLog.objects.get(action="audit.exported")
    assert exported.payload["scope"]["tenantless"] == "excluded"


def test_the_operators_command_still_exports_everything(entries, tmp_path):
    lines = [json.loads(line) for line in selectors.export_lines({})]

    assert full_seqs(lines) == {e.seq for e in entries.values()}


# ---------------------------------------------------------------- the admin's audit browser
def changelist_ids(client) -> set[int]:
    response = client.get(reverse("admin:audit_auditlog_changelist"))
    assert response.status_code == 200
    return {entry.pk for entry in response.context["cl"].result_list}


def test_a_tenant_admins_audit_list_shows_only_its_tenants_entries(client, role_users, entries):
    verified_client(client, role_users["admin"])

    assert changelist_ids(client) == {entries["a"].pk}
    response = client.get(reverse("admin:audit_auditlog_change", args=[entries["b"].pk]))
    assert response.status_code == 302 and response["Location"] == reverse("admin:index")


def test_an_auditors_audit_list_adds_the_tenantless_entries(client, role_users, entries):
    verified_client(client, role_users["auditor"])

    assert changelist_ids(client) == {entries["a"].pk, entries["none"].pk}


def test_an_auditor_without_the_capability_reads_no_tenantless_entry(client, tenant_a, entries):
    # An admin's capabilities on tenant A; audit.view_tenantless_entries is the auditor role's alone.
    reader = make_user("okur", roles=["admin"], tenants=[tenant_a])
    assert not reader.has_perm(selectors.TENANTLESS_CAPABILITY)

    assert set(selectors.entries_visible_to(reader).values_list("pk", flat=True)) == {entries["a"].pk}


def test_a_user_of_no_tenant_reads_nothing_but_what_the_capability_gives(entries):
    auditor_without_tenants = make_user("bagimsiz", roles=["auditor"])

    assert set(selectors.entries_visible_to(auditor_without_tenants).values_list("pk", flat=True)) == {
        entries["none"].pk
    }


def test_the_auditor_role_holds_the_tenantless_capability_and_the_admin_role_does_not():
    def codenames(role):
        return set(Group.objects.get(name=role).permissions.values_list("codename", flat=True))

    assert "view_tenantless_entries" in codenames("auditor")
    assert "view_tenantless_entries" not in codenames("admin")
