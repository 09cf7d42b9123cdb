"""Break-glass in the Django admin: a superuser requests it (user, reason, minutes), a second one approves it
with the list's action, anybody with the capability revokes it; every step goes through the service
(events, the second-approver rule), on an MFA-verified session."""

from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from apps.security import breakglass
from apps.security.models import BreakGlass, SecurityEvent
from tests.conftest import make_user, verified_client

pytestmark = pytest.mark.django_db

ADD = "admin:security_breakglass_add"
LIST = "admin:security_breakglass_changelist"


@pytest.fixture
def second_superuser(db):
    return make_user("root2", superuser=True)


@pytest.fixture
def staff(db):
    return make_user("vardiya", roles=["operator"])


def admin_as(user):
    return verified_client(Client(), user)


def request_in_admin(client, user, minutes=30, reason="VPN down, line 3 stopped"):
    return client.post(reverse(ADD), {"user": user.pk, "reason": reason, "minutes": minutes})


def act(client, action, grant):
    response = client.post(reverse(LIST), {"action": action, "_selected_action": [grant.pk]}, follow=True)
    assert response.status_code == 200
    return [(m.level_tag, str(m)) for m in get_messages(response.wsgi_request)]


def test_a_request_in_the_admin_and_the_second_superusers_approval(superuser, second_superuser, staff):
    root = admin_as(superuser)
    assert root.get(reverse(ADD)).status_code == 200
    answer = request_in_admin(root, staff)
    assert answer.status_code == 302, answer.content[:500]
    grant = BreakGlass.objects.get()
    assert (grant.user, grant.requested_by, grant.minutes, grant.approved_at) == (staff, superuser, 30, None)
    assert SecurityEvent.objects.filter(event_type="break_glass_requested", actor=superuser).exists()
    listing = root.get(reverse(LIST)).content.decode()
    assert "vardiya" in listing and "root" in listing and "onay bekliyor" in listing
    page = root.get(reverse("admin:security_breakglass_change", args=[grant.pk]))
    assert page.status_code == 200 and "VPN down" in page.content.decode(), "a read-only page"

    # The requester cannot approve their own request: a message, nothing approved.
    notes = act(root, "approve_requests", grant)
    assert [level for level, _text in notes] == ["error"]
    grant.refresh_from_db()
    assert grant.approved_at is None and breakglass.active_grant(staff) is None

    notes = act(admin_as(second_superuser), "approve_requests", grant)
    assert [level for level, _text in notes] == ["success"]
    grant.refresh_from_db()
    assert grant.approved_by == second_superuser
    assert grant.expires_at - grant.approved_at == timedelta(minutes=30)
    assert breakglass.active_grant(staff) == grant
    assert SecurityEvent.objects.filter(event_type="break_glass_approved", actor=second_superuser).exists()
    # Approving again is refused with a message.
    assert [level for level, _text in act(admin_as(second_superuser), "approve_requests", grant)] == ["error"]


def test_the_user_of_the_grant_cannot_approve_it(superuser, second_superuser):
    grant = breakglass.request_access(user=second_superuser, actor=superuser, reason="outage", minutes=10)
    notes = act(admin_as(second_superuser), "approve_requests", grant)
    assert [level for level, _text in notes] == ["error"]
    grant.refresh_from_db()
    assert grant.approved_at is None


def test_revoking_ends_a_live_grant_at_once_and_only_once(superuser, second_superuser, staff):
    grant = breakglass.request_access(user=staff, actor=superuser, reason="outage", minutes=60)
    grant = breakglass.approve(grant, approver=second_superuser)
    root = admin_as(superuser)
    assert [level for level, _text in act(root, "revoke_grants", grant)] == ["success"]
    grant.refresh_from_db()
    assert grant.status() == "revoked" and grant.revoked_by == superuser
    assert breakglass.active_grant(staff) is None and not breakglass.live_grants().exists()
    event = SecurityEvent.objects.get(event_type="break_glass_revoked")
    assert event.details["was"] == "active" and event.actor == superuser
    assert [level for level, _text in act(root, "revoke_grants", grant)] == ["error"]
    # A revoked request cannot be approved afterwards either.
    pending = breakglass.request_access(user=staff, actor=superuser, reason="again", minutes=5)
    act(root, "revoke_grants", pending)
    assert [level for level, _text in act(admin_as(second_superuser), "approve_requests", pending)] == ["error"]


def test_the_form_refuses_too_many_minutes_and_an_empty_reason(superuser, staff, settings):
    root = admin_as(superuser)
    too_long = request_in_admin(root, staff, minutes=settings.BREAK_GLASS_MAX_MINUTES + 1)
    assert too_long.status_code == 200 and "minutes" in too_long.context["adminform"].form.errors
    blank = request_in_admin(root, staff, reason="   ")
    assert blank.status_code == 200 and "reason" in blank.context["adminform"].form.errors
    assert not BreakGlass.objects.exists()


def test_only_superusers_reach_break_glass_in_the_admin(role_users, superuser, staff):
    tenant_admin = admin_as(role_users["admin"])
    assert tenant_admin.get(reverse(LIST)).status_code == 403
    assert tenant_admin.get(reverse(ADD)).status_code == 403
    assert request_in_admin(tenant_admin, staff).status_code == 403
    grant = breakglass.request_access(user=staff, actor=superuser, reason="outage", minutes=5)
    answer = tenant_admin.post(reverse(LIST), {"action": "approve_requests", "_selected_action": [grant.pk]})
    assert answer.status_code == 403
    grant.refresh_from_db()
    assert grant.approved_at is None
    assert not BreakGlass.objects.exclude(pk=grant.pk).exists()
    # Nobody edits or deletes a request.
    root = admin_as(superuser)
    assert root.post(reverse("admin:security_breakglass_delete", args=[grant.pk]), {"post": "yes"}).status_code == 403
    assert BreakGlass.objects.filter(pk=grant.pk).exists()
