"""Dead letters and how operators get them out: the replay API, the command, the admin actions."""

import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from apps.audit.models import AuditLog
from apps.erp.models import ErpOutboundDeadLetter, ErpSync, SyncStatus
from apps.jobs import services as jobs
from apps.jobs.models import JobStatus
from tests.conftest import verified_client

pytestmark = pytest.mark.django_db

REPLAY = "/admin/erp/replay"


@pytest.fixture
def dead_letter(erp_profile, mock_erp, job, django_capture_on_commit_callbacks):
    mock_erp.plan(status=400)
    with django_capture_on_commit_callbacks(execute=True):
        jobs.change_status(job, JobStatus.RUNNING)
    return ErpOutboundDeadLetter.objects.get()


@pytest.fixture
def admin_client(client, role_users):
    return verified_client(client, role_users["admin"])


def test_replay_by_id_goes_dlq_to_queued_to_acked(
    admin_client, dead_letter, mock_erp, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(REPLAY, {"sync_ids": [dead_letter.sync_id]}, content_type="application/json")
    assert response.status_code == 200, response.content
    assert response.json() == {"dry_run": False, "replayed": [dead_letter.sync_id], "skipped": []}
    sync = ErpSync.objects.get()
    assert sync.status == SyncStatus.ACKED and sync.attempt_count == 2
    dead_letter.refresh_from_db()
    assert dead_letter.closed_by == "replayed" and dead_letter.closed_at is not None
    assert [r["status"] for r in mock_erp.received()] == [400, 200]
    entry = AuditLog.objects.get(action="erp.dlq.replayed")
    assert entry.object_id == str(sync.pk) and entry.actor_id == str(admin_client.session["_auth_user_id"])


def test_a_dry_run_lists_and_changes_nothing(admin_client, dead_letter, mock_erp):
    since = (timezone.now() - timedelta(hours=1)).isoformat()
    response = admin_client.post(REPLAY, {"since": since, "dry_run": True}, content_type="application/json")
    assert response.json() == {"dry_run": True, "replayed": [dead_letter.sync_id], "skipped": []}
    assert ErpSync.objects.get().status == SyncStatus.FAILED
    assert ErpOutboundDeadLetter.objects.get().is_open
    assert len(mock_erp.received()) == 1


def test_replay_by_filter_takes_only_matching_entries(admin_client, dead_letter):
    response = admin_client.post(REPLAY, {"error_class": "server", "dry_run": True}, content_type="application/json")
    assert response.json()["replayed"] == []
    response = admin_client.post(REPLAY, {"error_class": "rejected", "dry_run": True}, content_type="application/json")
    assert response.json()["replayed"] == [dead_letter.sync_id]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "non_field_errors"),
        ({"dry_run": True}, "non_field_errors"),
        ({"sync_ids": ["x"]}, "sync_ids"),
        ({"since": "yesterday"}, "since"),
        ({"error_class": "bogus"}, "error_class"),
        ({"since": "2026-11-23T10:00:00Z", "until": "2026-11-23T09:00:00Z"}, "until"),
    ],
)
def test_bad_replay_requests_get_422_problems(admin_client, dead_letter, body, field):
    response = admin_client.post(REPLAY, body, content_type="application/json")
    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"
    assert field in str(response.json())
    assert ErpOutboundDeadLetter.objects.get().is_open


def test_unknown_ids_are_reported_not_replayed(admin_client, dead_letter):
    response = admin_client.post(REPLAY, {"sync_ids": [dead_letter.sync_id + 999]}, content_type="application/json")
    assert response.json()["skipped"] == [{"sync_id": dead_letter.sync_id + 999, "why": "not in the dead-letter queue"}]


@pytest.mark.parametrize("role", ["analyst", "operator", "auditor"])
def test_roles_without_the_capability_cannot_replay(client, role_users, dead_letter, role):
    response = verified_client(client, role_users[role]).post(
        REPLAY, {"sync_ids": [dead_letter.sync_id]}, content_type="application/json"
    )
    assert response.status_code == 403
    assert response["Content-Type"] == "application/problem+json"
    assert ErpOutboundDeadLetter.objects.get().is_open


def test_anonymous_and_password_only_sessions_are_refused(client, role_users, dead_letter):
    assert client.post(REPLAY, {"sync_ids": [1]}, content_type="application/json").status_code in (401, 403)
    client.force_login(role_users["admin"])  # no TOTP step
    assert client.post(REPLAY, {"sync_ids": [1]}, content_type="application/json").status_code == 403


def test_another_tenants_dead_letters_are_invisible(client, tenant_b, dead_letter, django_capture_on_commit_callbacks):
    from tests.conftest import make_user

    other_admin = make_user("admin_b", roles=["admin"], tenants=[tenant_b])
    response = verified_client(client, other_admin).post(
        REPLAY, {"sync_ids": [dead_letter.sync_id]}, content_type="application/json"
    )
    assert response.json()["replayed"] == []
    assert ErpOutboundDeadLetter.objects.get().is_open


def test_erp_replay_command(dead_letter, mock_erp, django_capture_on_commit_callbacks):
    out = io.StringIO()
    call_command("erp_replay", "--cause", "rejected", "--dry-run", stdout=out)
    assert out.getvalue().strip() == f"would replay 1: {dead_letter.sync_id}"
    with django_capture_on_commit_callbacks(execute=True):
        call_command("erp_replay", "--sync-id", str(dead_letter.sync_id), stdout=out)
    assert ErpSync.objects.get().status == SyncStatus.ACKED


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "Name the messages"),
        (["--since", "yesterday"], "is not an ISO 8601 time"),
        (["--since", "2026-11-23T10:00:00"], "with a zone"),
        (["--since", "2026-11-23T10:00:00Z", "--until", "2026-11-23T09:00:00Z"], "must be after"),
    ],
)
def test_erp_replay_command_refuses_bad_input(db, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("erp_replay", *args)


def _action(client, model, action, ids):
    url = reverse(f"admin:erp_{model}_changelist")
    return client.post(url, {"action": action, "_selected_action": [str(i) for i in ids]}, follow=True)


def test_admin_requeue_resolve_ignore_are_audited(
    admin_client, dead_letter, mock_erp, job, django_capture_on_commit_callbacks
):
    sync = dead_letter.sync
    mock_erp.plan(status=400)
    with django_capture_on_commit_callbacks(execute=True):
        _action(admin_client, "erpsync", "requeue_selected", [sync.pk])
    sync.refresh_from_db()
    assert sync.status == SyncStatus.FAILED and sync.attempt_count == 2  # sent again, refused again
    assert ErpOutboundDeadLetter.objects.filter(closed_by="replayed").count() == 1

    _action(admin_client, "erpsync", "resolve_selected", [sync.pk])
    sync.refresh_from_db()
    assert sync.status == SyncStatus.RESOLVED
    assert not ErpOutboundDeadLetter.objects.filter(closed_at__isnull=True).exists()

    with django_capture_on_commit_callbacks(execute=True):
        jobs.change_status(job, JobStatus.PAUSED)
    other = ErpSync.objects.exclude(pk=sync.pk).get()
    _action(admin_client, "erpsync", "ignore_selected", [other.pk])  # acked rows are left alone
    other.refresh_from_db()
    assert other.status == SyncStatus.ACKED

    actions = list(
        AuditLog.objects.filter(action__startswith="erp.sync.").order_by("id").values_list("action", flat=True)
    )
    assert actions == ["erp.sync.requeued", "erp.sync.resolved"]


def test_the_admin_shows_the_attempt_history(admin_client, dead_letter):
    page = admin_client.get(reverse("admin:erp_erpsync_change", args=[dead_letter.sync_id])).content.decode()
    assert "rejected" in page and "400" in page
    assert dead_letter.sync.attempts.get().request_id in page


def test_admin_replay_action_on_dead_letters(admin_client, dead_letter, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        _action(admin_client, "erpoutbounddeadletter", "replay_selected", [dead_letter.pk])
    assert ErpSync.objects.get().status == SyncStatus.ACKED


def test_an_operator_cannot_requeue_through_the_admin(client, role_users, dead_letter):
    operator = role_users["operator"]
    response = _action(verified_client(client, operator), "erpsync", "requeue_selected", [dead_letter.sync_id])
    assert response.status_code == 403
    assert ErpSync.objects.get().status == SyncStatus.FAILED


def test_profiles_keep_secrets_write_only(client, superuser, erp_profile):
    url = reverse("admin:erp_integrationprofile_change", args=[erp_profile.pk])
    page = verified_client(client, superuser).get(url).content.decode()
    from .conftest import SECRET

    assert SECRET not in page
    assert erp_profile.keys.get().fingerprint in page
    assert f"/admin/erp/profiles/{erp_profile.pk}/rotate-keys/" in page


def test_a_tenant_admin_does_not_see_the_default_profile(admin_client, erp_profile):
    url = reverse("admin:erp_integrationprofile_change", args=[erp_profile.pk])
    assert admin_client.get(url).status_code == 302  # "does not exist" redirect to the changelist
    assert erp_profile.name not in admin_client.get(reverse("admin:erp_integrationprofile_changelist")).content.decode()


def test_setting_keys_in_the_admin_retires_the_old_one_and_audits(client, superuser, erp_profile):
    url = reverse("admin:erp_integrationprofile_change", args=[erp_profile.pk])
    old = erp_profile.keys.get()
    form = {
        "name": "default", "base_url": erp_profile.base_url, "enabled": "on", "ip_allowlist": "",
        "current_secret": "a-brand-new-current-secret", "next_secret": "short", "inbound_token": "",
        "keys-TOTAL_FORMS": "1", "keys-INITIAL_FORMS": "1", "keys-MIN_NUM_FORMS": "0", "keys-MAX_NUM_FORMS": "1000",
        "keys-0-id": str(old.pk), "keys-0-profile": str(erp_profile.pk),
    }  # fmt: skip
    response = verified_client(client, superuser).post(url, form)
    assert (
        response.status_code == 200 and "En az 16 karakter kullanın." in response.content.decode()
    )  # Turkish, the default
    form["next_secret"] = "a-brand-new-next-secret"
    response = client.post(url, form)
    assert response.status_code == 302, response.content.decode()[:3000]
    states = dict(erp_profile.keys.values_list("fingerprint", "state"))
    assert states[old.fingerprint] == "retired"
    assert sorted(states.values()) == ["current", "next", "retired"]
    assert AuditLog.objects.filter(action="erp.key.replaced").count() == 2
    assert "a-brand-new" not in str(list(AuditLog.objects.values_list("payload", flat=True)))


def test_a_superseded_dead_letter_is_skipped_unless_asked_for(
    admin_client, dead_letter, mock_erp, job, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        jobs.change_status(job, JobStatus.SUCCEEDED)  # seq 2 is acknowledged: seq 1 is superseded
    body = {"sync_ids": [dead_letter.sync_id]}
    dry = admin_client.post(REPLAY, {**body, "dry_run": True}, content_type="application/json").json()
    assert dry["replayed"] == [] and dry["skipped"][0]["sync_id"] == dead_letter.sync_id
    assert "superseded by a later acknowledged message" in dry["skipped"][0]["why"]
    with django_capture_on_commit_callbacks(execute=True):
        skipped = admin_client.post(REPLAY, body, content_type="application/json").json()
    assert skipped["replayed"] == [] and len(mock_erp.received()) == 2
    with django_capture_on_commit_callbacks(execute=True):
        sent = admin_client.post(REPLAY, {**body, "include_superseded": True}, content_type="application/json")
    assert sent.json()["replayed"] == [dead_letter.sync_id]
    assert ErpSync.objects.get(pk=dead_letter.sync_id).status == SyncStatus.ACKED
