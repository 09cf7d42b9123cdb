"""The governance and audit endpoints: auditors read, admins change, tenant-scoped, problem+json."""

import pytest

from apps.audit import services as audit_services
from apps.audit.models import AuditLog
from apps.governance.models import LegalHold, RetentionPolicy
from tests.conftest import make_user, verified_client
from tests.governance.conftest import make_attempts

G = "/api/enterprise/governance"
A = "/api/enterprise/audit"


@pytest.fixture
def root_api(client, superuser):
    return verified_client(client, superuser)


@pytest.mark.django_db
def test_an_auditor_reads_policies_but_cannot_change_them(client, role_users):
    api = verified_client(client, role_users["auditor"])
    body = api.get(f"{G}/retention-policies").json()
    assert {p["data_class"] for p in body["results"]} >= {"audit_entries", "erp_sync_attempts"}
    refused = api.post(f"{G}/retention-policies", {"data_class": "sessions", "retention_days": 1},
                       content_type="application/json")  # fmt: skip
    assert refused.status_code == 403
    assert refused["Content-Type"] == "application/problem+json"


@pytest.mark.django_db
def test_a_tenant_admin_cannot_change_a_global_policy_but_every_tenant_admin_can(client, role_users, superuser):
    api = verified_client(client, role_users["admin"])
    body = {"collection_name": "erp_sync_attempts", "retention_days": 90, "archive_before_delete": True}
    assert api.post(f"{G}/retention-policies", body, content_type="application/json").status_code == 403
    client.logout()
    api = verified_client(client, superuser)
    answer = api.post(f"{G}/retention-policies", body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="p1")
    assert answer.status_code == 200, answer.content
    policy = RetentionPolicy.objects.get(data_class="erp_sync_attempts")
    assert policy.retention_days == 90 and policy.archive_before_delete
    assert AuditLog.objects.filter(action="governance.retention_policy.changed").exists()
    again = api.post(f"{G}/retention-policies", body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="p1")
    assert again["Idempotent-Replayed"] == "true"
    bad = api.post(f"{G}/retention-policies", {"data_class": "nope", "retention_days": -1},
                   content_type="application/json")  # fmt: skip
    assert bad.status_code == 422 and bad["Content-Type"] == "application/problem+json"


@pytest.mark.django_db
def test_apply_retention_dry_run_counts_and_the_real_run_is_queued(root_api):
    make_attempts(4)
    dry = root_api.post(f"{G}/apply-retention", {"dry_run": True}, content_type="application/json").json()
    row = next(r for r in dry["classes"] if r["data_class"] == "erp_sync_attempts")
    assert row["count"] == 4


@pytest.mark.django_db
def test_legal_holds_are_placed_listed_and_lifted_with_reasons(client, role_users, tenant_a, tenant_b):
    admin = verified_client(client, role_users["admin"])
    placed = admin.post(f"{G}/legal-holds", {"scope": "tenant", "tenant": tenant_a.pk, "reason": "case 17"},
                        content_type="application/json")  # fmt: skip
    assert placed.status_code == 201, placed.content
    other = admin.post(f"{G}/legal-holds", {"scope": "tenant", "tenant": tenant_b.pk, "reason": "x"},
                       content_type="application/json")  # fmt: skip
    assert other.status_code == 422, "a tenant admin holds only their own tenants"
    everything = admin.post(f"{G}/legal-holds", {"scope": "global", "reason": "x"}, content_type="application/json")
    assert everything.status_code == 403
    no_reason = admin.post(f"{G}/legal-holds", {"scope": "tenant", "tenant": tenant_a.pk},
                           content_type="application/json")  # fmt: skip
    assert no_reason.status_code == 422
    hold_id = placed.json()["id"]
    assert [h["id"] for h in admin.get(f"{G}/legal-holds").json()["results"]] == [hold_id]
    assert admin.delete(f"{G}/legal-holds/{hold_id}").status_code == 422, "lifting needs a reason"
    lifted = admin.delete(f"{G}/legal-holds/{hold_id}", {"reason": "settled"}, content_type="application/json")
    assert lifted.status_code == 200 and lifted.json()["active"] is False
    assert admin.delete(f"{G}/legal-holds/{hold_id}?reason=again").status_code == 409
    outsider = make_user("admin_b", roles=["admin"], tenants=[tenant_b])
    client.logout()
    api_b = verified_client(client, outsider)
    assert api_b.get(f"{G}/legal-holds").json()["results"] == []
    assert api_b.delete(f"{G}/legal-holds/{hold_id}?reason=x").status_code == 404
    assert LegalHold.objects.count() == 1


@pytest.mark.django_db
def test_audit_log_search_pages_by_seq_and_is_tenant_scoped(client, role_users, tenant_a, tenant_b):
    for i in range(5):
        audit_services.record(("user", "9"), "test.a", payload={"i": i}, tenant_id=tenant_a.pk)
    audit_services.record(("user", "9"), "test.b", payload={}, tenant_id=tenant_b.pk)
    audit_services.seal_pending()
    api = verified_client(client, role_users["admin"])
    first = api.get(f"{A}/logs", {"actor": "9", "limit": 3}).json()
    assert [e["payload"]["i"] for e in first["results"]] == [0, 1, 2]
    rest = api.get(f"{A}/logs", {"actor": "9", "limit": 3, "after_seq": first["next_after_seq"]}).json()
    assert [e["payload"]["i"] for e in rest["results"]] == [3, 4] and rest["next_after_seq"] is None
    assert api.get(f"{A}/logs", {"action": "test.b"}).json()["results"] == [], "tenant B's entries stay hidden"
    bad = api.get(f"{A}/logs", {"limit": "999999999", "start_date": "yesterday"})
    assert bad.status_code == 422 and bad["Content-Type"] == "application/problem+json"


@pytest.mark.django_db
def test_verify_integrity_and_compliance_report(client, role_users):
    audit_services.record(None, "auth.login", payload={})
    audit_services.seal_pending()
    audit_services.make_checkpoint(force=True)
    api = verified_client(client, role_users["auditor"])
    body = api.get(f"{A}/verify-integrity", {"start_date": "2000-01-01T00:00:00Z"}).json()
    assert body["ok"] is True and body["checked"] >= 1
    report = api.get(f"{A}/compliance-report", {"days": 30}).json()
    assert report["sign_ins"] == 1 and report["verification"]["ok"] is True
    assert api.get(f"{A}/compliance-report", {"days": 0}).status_code == 422
    gov = api.get(f"{G}/compliance-report").json()
    assert {r["data_class"] for r in gov["retention"]} >= {"audit_entries"}
