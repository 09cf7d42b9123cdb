"""The incident lock: 423 for API writes, a read-only admin with a banner, emergency operations, audit."""

import json

import pytest
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.urls import reverse
from knox.models import AuthToken
from rest_framework.test import APIClient

from apps.audit.models import AuditLog
from apps.core import incident_lock
from apps.core.models import IdempotencyRecord, IncidentLock
from apps.jobs.models import JobStatus
from tests import factories
from tests.conftest import verified_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def job(tenant_a):
    return factories.JobFactory(tenant=tenant_a)


@pytest.fixture
def api(role_users):
    return verified_client(APIClient(), role_users["operator"])


@pytest.fixture
def locked():
    incident_lock.set_lock(True, reason="suspected credential leak", source="command")
    return incident_lock.state()


def test_while_locked_a_mutating_api_request_gets_423_problem_and_changes_nothing(api, job, locked):
    response = api.post(
        f"/api/v1/jobs/{job.public_id}/status", {"status": "running"}, format="json", HTTP_IDEMPOTENCY_KEY="k-locked"
    )
    assert response.status_code == 423
    assert response["Content-Type"] == "application/problem+json"
    body = json.loads(response.content)
    assert body["type"] == "urn:tezgah:problem:incident-lock"
    assert body["reason"] == "suspected credential leak"
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED
    assert not IdempotencyRecord.objects.exists(), "a locked request claims no Idempotency-Key"


def test_reads_keep_working_while_locked(api, job, locked):
    assert api.get("/api/v1/jobs/").status_code == 200
    assert api.get(f"/api/v1/jobs/{job.public_id}/").status_code == 200


def test_revoking_a_token_is_an_emergency_operation(role_users, locked):
    _row, token = AuthToken.objects.create(user=role_users["operator"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.post("/api/v1/auth/token/revoke/").status_code == 204
    assert not AuthToken.objects.filter(user=role_users["operator"]).exists()


def test_an_emergency_operation_left_out_of_the_allowlist_is_locked_too(role_users, locked, settings):
    settings.INCIDENT_LOCK_EMERGENCY_OPS = ["incident_lock"]
    _row, token = AuthToken.objects.create(user=role_users["operator"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.post("/api/v1/auth/token/revoke/").status_code == 423
    assert client.post("/api/v1/auth/token/").status_code == 423


def test_switching_is_audited_with_the_reason_and_needs_one(superuser):
    with pytest.raises(ValueError):
        incident_lock.set_lock(True, reason="  ", actor=superuser)
    incident_lock.set_lock(True, reason="ransomware on line 3", actor=superuser)
    incident_lock.set_lock(False, reason="contained", actor=superuser)
    entries = list(AuditLog.objects.filter(action__startswith="incident_lock.").order_by("id"))
    assert [e.action for e in entries] == ["incident_lock.on", "incident_lock.off"]
    assert entries[0].payload["reason"] == "ransomware on line 3"
    assert entries[0].actor_id == str(superuser.pk)
    assert entries[1].payload == {"enabled": False, "was_enabled": True, "reason": "contained", "source": "admin"}


def test_the_state_is_the_database_row_shared_by_every_process(locked):
    # Another process switched it off: it wrote the row and dropped the shared cache entry.
    IncidentLock.objects.filter(pk=1).update(enabled=False)
    assert incident_lock.is_locked(), "served from the shared cache until the switcher drops it"
    cache.delete(incident_lock.CACHE_KEY)
    assert not incident_lock.is_locked()


def test_incident_lock_enabled_holds_the_lock_on_from_boot(api, job, settings, monkeypatch):
    monkeypatch.setitem(incident_lock._boot_recorded, "done", False)  # a fresh process
    settings.INCIDENT_LOCK_ENABLED = True
    assert incident_lock.state().forced_by_env
    entry = AuditLog.objects.get(action="incident_lock.on")
    assert entry.payload["reason"] == incident_lock.BOOT_REASON and entry.payload["source"] == "boot"
    assert IncidentLock.objects.get(pk=1).enabled, "the stored switch is on too"
    assert api.post(f"/api/v1/jobs/{job.public_id}/status", {"status": "running"}, format="json").status_code == 423
    with pytest.raises(CommandError, match="INCIDENT_LOCK_ENABLED"):
        call_command("incident_lock", "off", "--reason", "try")
    assert incident_lock.is_locked()


def test_the_command_switches_with_a_reason(capsys):
    call_command("incident_lock", "on", "--reason", "drill")
    assert incident_lock.is_locked()
    assert "(drill)" in capsys.readouterr().out  # "ON" / "AÇIK" by the active language
    with pytest.raises(CommandError):
        call_command("incident_lock", "off")
    call_command("incident_lock", "off", "--reason", "drill over")
    assert not incident_lock.is_locked()
    entry = AuditLog.objects.filter(action="incident_lock.off").get()
    assert entry.actor_type == "system" and entry.payload["source"] == "command"


# ---------------------------------------------------------------- the admin
@pytest.fixture
def admin_client(client, superuser):
    return verified_client(client, superuser)


def test_the_admin_shows_a_banner_and_offers_no_writes_while_locked(admin_client, job, locked):
    page = admin_client.get(reverse("admin:jobs_job_change", args=[job.pk]), HTTP_ACCEPT_LANGUAGE="en")
    text = page.content.decode()
    assert page.status_code == 200
    assert "incident-lock-banner" in text and "suspected credential leak" in text
    assert 'name="_save"' not in text, "the change form is view-only"
    changelist = admin_client.get(reverse("admin:jobs_job_changelist"))
    assert changelist.context["action_form"] is None or not changelist.context["cl"].model_admin.get_actions(
        changelist.wsgi_request
    )
    assert admin_client.get(reverse("admin:jobs_job_add")).status_code == 403


def test_the_admin_refuses_saves_deletes_and_actions_while_locked(admin_client, job, locked):
    cancel = admin_client.post(
        reverse("admin:jobs_job_changelist"), {"action": "cancel_jobs", "_selected_action": [job.pk]}
    )
    assert cancel.status_code == 302
    delete = admin_client.post(reverse("admin:jobs_job_delete", args=[job.pk]), {"post": "yes"})
    assert delete.status_code == 302
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED
    messages = [str(m) for m in admin_client.get(reverse("admin:index")).context["messages"]]
    assert messages, "the refusal is explained"


def test_no_banner_when_unlocked(admin_client):
    assert "incident-lock-banner" not in admin_client.get(reverse("admin:index")).content.decode()


def test_the_switch_in_the_admin_lifts_the_lock_and_is_audited(admin_client, superuser, locked):
    url = reverse("admin:core_incidentlock_change", args=[1])
    assert admin_client.get(reverse("admin:core_incidentlock_changelist")).url == url
    refused = admin_client.post(url, {"enabled": "", "reason": ""})
    assert refused.status_code == 200 and incident_lock.is_locked(), "a reason is required"
    response = admin_client.post(url, {"enabled": "", "reason": "all clear"})
    assert response.status_code == 302, response.content.decode()[:500]
    assert not incident_lock.is_locked()
    entry = AuditLog.objects.filter(action="incident_lock.off").get()
    assert entry.actor_id == str(superuser.pk) and entry.payload["reason"] == "all clear"


def test_the_switch_needs_its_capability(client, role_users):
    verified_client(client, role_users["admin"])
    IncidentLock.objects.get_or_create(pk=1)
    response = client.post(reverse("admin:core_incidentlock_change", args=[1]), {"enabled": "on", "reason": "x"})
    assert response.status_code == 403
    assert not incident_lock.is_locked()


def test_an_api_under_admin_gets_423_problem_not_a_redirect(role_users, locked):
    _row, token = AuthToken.objects.create(user=role_users["admin"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    response = client.post("/admin/erp/replay", {"sync_ids": [1]}, format="json")
    assert response.status_code == 423
    assert json.loads(response.content)["type"] == "urn:tezgah:problem:incident-lock"


def test_the_login_page_does_not_show_the_lock_reason(client, locked):
    page = client.get(reverse("admin:login")).content.decode()
    assert "suspected credential leak" not in page


def test_a_locked_job_page_shows_no_empty_status_request_fields(admin_client, job, locked):
    for language in ("tr", "en"):
        page = admin_client.get(reverse("admin:jobs_job_change", args=[job.pk]), HTTP_ACCEPT_LANGUAGE=language)
        readonly = [field.contents() for field in _readonly_fields(page)]
        assert readonly, "the status fields are shown read-only"
        assert "None" not in readonly
        assert "new_status" not in page.content.decode()


def _readonly_fields(page):
    for fieldset in page.context["adminform"]:
        for line in fieldset:
            for field in line:
                if field.is_readonly:
                    yield field


@pytest.mark.parametrize(
    ("language", "label", "on", "off"),
    [
        ("en", "Reason", "The incident lock is now on.", "The incident lock is now off."),
        ("tr", "Gerekçe", "Acil durum kilidi artık açık.", "Acil durum kilidi artık kapalı."),
    ],
)
def test_the_switch_page_says_what_the_switch_did(admin_client, language, label, on, off):
    url = reverse("admin:core_incidentlock_change", args=[1])
    IncidentLock.objects.get_or_create(pk=1)
    page = admin_client.get(url, HTTP_ACCEPT_LANGUAGE=language).content.decode()
    assert f">{label}:</label>" in page

    turned_on = admin_client.post(url, {"enabled": "on", "reason": "drill"}, HTTP_ACCEPT_LANGUAGE=language, follow=True)
    assert [str(m) for m in turned_on.context["messages"]] == [on]
    turned_off = admin_client.post(url, {"enabled": "", "reason": "done"}, HTTP_ACCEPT_LANGUAGE=language, follow=True)
    text = turned_off.content.decode()
    assert [str(m) for m in turned_off.context["messages"]] == [off]
    assert "was changed successfully" not in text and "başarıyla değiştirildi" not in text
