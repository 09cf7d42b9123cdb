import re

import pytest
from django.contrib.admin import helpers
from django.urls import reverse

from apps.audit import services
from apps.audit.models import AuditLog
from apps.catalog.models import Machine
from tests import factories
from tests.audit.tampering import tamper
from tests.conftest import verified_client

LIST = reverse("admin:audit_auditlog_changelist")
VERIFY = reverse("admin:audit_auditlog_verify")


def _chain(n=3):
    for i in range(n):
        services.record(None, "test.event", payload={"i": i})
    services.seal_pending()
    services.make_checkpoint(force=True)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("role", "allowed"), [("auditor", True), ("admin", True), ("operator", False), ("analyst", False)]
)
def test_only_auditors_and_admins_browse_and_verify_the_audit_trail(client, role_users, role, allowed):
    _chain()
    verified_client(client, role_users[role])
    expected = 200 if allowed else 403
    assert client.get(LIST).status_code == expected
    assert client.get(VERIFY).status_code == expected


@pytest.mark.django_db
def test_nobody_may_add_change_or_delete_audit_rows_not_even_a_superuser(client, superuser):
    _chain(1)
    verified_client(client, superuser)
    entry = AuditLog.objects.get()
    assert client.get(reverse("admin:audit_auditlog_add")).status_code == 403
    assert client.get(reverse("admin:audit_auditlog_delete", args=[entry.pk])).status_code == 403
    page = client.get(reverse("admin:audit_auditlog_change", args=[entry.pk]))
    assert page.status_code == 200 and b'name="_save"' not in page.content
    response = client.post(reverse("admin:audit_auditlog_change", args=[entry.pk]), {"action": "forged"})
    assert response.status_code == 403
    assert AuditLog.objects.get(pk=entry.pk).action == "test.event"


@pytest.mark.django_db
def test_verify_now_reports_intact_then_the_first_broken_entry(client, role_users):
    _chain(3)
    verified_client(client, role_users["auditor"])
    page = client.get(VERIFY, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Intact: 3 entries and 1 signed checkpoint verified." in page
    tamper("UPDATE audit_logs SET action = 'forged' WHERE seq = 2")
    page = client.get(VERIFY, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Broken at seq 2" in page


@pytest.mark.django_db
def test_an_admin_change_is_recorded_with_a_field_level_diff(client, role_users, tenant_a):
    machine = factories.MachineFactory(tenant=tenant_a, code="M1", name="Eski Ad", location="Hol 1")
    verified_client(client, role_users["operator"])
    url = reverse("admin:catalog_machine_change", args=[machine.pk])
    response = client.post(
        url, {"tenant": tenant_a.pk, "code": "M1", "name": "Yeni Ad", "location": "Hol 1", "is_active": "on"}
    )
    assert response.status_code == 302
    entry = AuditLog.objects.get(action="admin.change")
    assert entry.payload == {"fields": {"name": ["Eski Ad", "Yeni Ad"]}}
    assert (entry.object_type, entry.object_id) == ("catalog.machine", str(machine.pk))
    assert entry.actor_id == str(role_users["operator"].pk) and entry.tenant_id == tenant_a.pk


@pytest.mark.django_db
def test_an_admin_add_and_a_bulk_delete_are_recorded_per_object_and_in_summary(client, role_users, tenant_a):
    verified_client(client, role_users["admin"])
    client.post(
        reverse("admin:catalog_machine_add"),
        {"tenant": tenant_a.pk, "code": "M9", "name": "Pres", "location": "", "is_active": "on"},
    )
    added = AuditLog.objects.get(action="admin.add")
    assert added.payload["fields"]["code"] == [None, "M9"]
    machines = [Machine.objects.get(code="M9"), factories.MachineFactory(tenant=tenant_a)]
    client.post(
        reverse("admin:catalog_machine_changelist"),
        {"action": "delete_selected", helpers.ACTION_CHECKBOX_NAME: [m.pk for m in machines], "post": "yes"},
    )
    assert not Machine.objects.exists()
    assert AuditLog.objects.filter(action="admin.delete").count() == 2
    summary = AuditLog.objects.get(action="admin.bulk_delete")
    assert sorted(summary.payload["ids"]) == sorted(m.pk for m in machines)


@pytest.mark.django_db
def test_a_password_change_is_recorded_without_the_password(client, superuser):
    user = factories.UserFactory(username="kisi")
    verified_client(client, superuser)
    client.post(
        reverse("admin:auth_user_password_change", args=[user.pk]),
        {"password1": "a brand new passphrase 9", "password2": "a brand new passphrase 9", "usable_password": "true"},
    )
    user.refresh_from_db()
    assert user.check_password("a brand new passphrase 9")
    entry = AuditLog.objects.get(action="admin.change", object_id=str(user.pk))
    assert "a brand new passphrase 9" not in str(entry.payload)


@pytest.mark.django_db
def test_a_change_in_a_third_party_admin_is_recorded_too(client, superuser):
    from django_celery_beat.models import IntervalSchedule

    schedule = IntervalSchedule.objects.create(every=5, period="seconds")
    verified_client(client, superuser)
    response = client.post(
        reverse("admin:django_celery_beat_intervalschedule_change", args=[schedule.pk]),
        {
            "every": "30",
            "period": "seconds",
            "periodictask_set-TOTAL_FORMS": "0",
            "periodictask_set-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302
    entry = AuditLog.objects.get(action="admin.change", object_type="django_celery_beat.intervalschedule")
    assert entry.payload == {"fields": {"every": [5, 30]}}


@pytest.mark.django_db
def test_granting_a_tenant_permission_on_guardians_page_is_recorded(client, superuser, tenant_a):
    someone = factories.UserFactory(username="yeni_kisi")
    verified_client(client, superuser)
    url = reverse("admin:accounts_tenant_permissions_manage_user", args=[tenant_a.pk, someone.pk])
    response = client.post(url, {"permissions": ["access_tenant"]})
    assert response.status_code == 302, response.context["form"].errors
    entry = AuditLog.objects.get(action="tenant.permissions.changed")
    assert entry.payload == {"holder": f"user:{someone.pk}", "added": ["access_tenant"], "removed": []}
    assert entry.object_id == str(tenant_a.pk) and entry.actor_id == str(superuser.pk)


@pytest.mark.django_db
def test_verify_now_counts_in_the_plural_only_when_there_are_several(client, role_users, signing_key):
    _chain(1)
    verified_client(client, role_users["auditor"])
    assert (
        "Intact: 1 entry and 1 signed checkpoint verified."
        in client.get(VERIFY, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    )
    for _ in range(2):
        _chain(2)
    english = client.get(VERIFY, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Intact: 5 entries and 3 signed checkpoints verified." in english
    turkish = client.get(VERIFY, HTTP_ACCEPT_LANGUAGE="tr").content.decode()
    assert "Sağlam: 5 kayıt ve 3 imzalı kontrol noktası doğrulandı." in turkish


@pytest.mark.django_db
def test_the_audit_list_names_actors_and_tenants_and_the_export_keeps_ids(client, role_users, tenant_a):
    operator = role_users["operator"]
    services.record(operator, "test.named", payload={}, tenant_id=tenant_a.pk)
    services.record(None, "test.system", payload={})
    services.record(("erp", "erp-profile-7"), "test.erp", payload={})
    services.seal_pending()
    verified_client(client, role_users["auditor"])
    page = client.get(LIST, HTTP_ACCEPT_LANGUAGE="tr")
    rows = {
        result[4]: result
        for result in (
            [cell for cell in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S)]
            for row in re.findall(r"<tr>(.*?)</tr>", page.content.decode(), re.S)
        )
        if len(result) > 7
    }
    named = rows["test.named"]
    assert f'<span title="{operator.pk}">{operator.username}</span>' in named[3]
    assert f'<span title="{tenant_a.pk}">{tenant_a.name}</span>' in named[7]
    assert rows["test.system"][3] == "—" and rows["test.system"][7] == "—"
    assert rows["test.erp"][3] == "erp-profile-7"

    entry = AuditLog.objects.get(action="test.named")
    assert services.entry_fields(entry)["actor_id"] == str(operator.pk)
    assert services.entry_fields(entry)["tenant_id"] == tenant_a.pk


@pytest.mark.django_db
def test_the_audit_list_looks_names_up_once_per_page(client, role_users, tenant_a, django_assert_max_num_queries):
    for role in ("operator", "analyst", "admin"):
        for _ in range(5):
            services.record(role_users[role], "test.many", payload={}, tenant_id=tenant_a.pk)
    services.seal_pending()
    verified_client(client, role_users["auditor"])
    client.get(LIST)
    with django_assert_max_num_queries(20):
        assert client.get(LIST).status_code == 200
