"""The governance console: policies edited, holds placed and lifted through the services, requests created."""

import pytest
from django.urls import reverse

from apps.audit.models import AuditLog
from apps.governance.models import DataSubjectRequest, LegalHold
from tests.conftest import verified_client


@pytest.mark.django_db
@pytest.mark.parametrize("model", ["retentionpolicy", "retentionrun", "legalhold", "datasubjectrequest"])
def test_the_changelists_open(client, superuser, model):
    api = verified_client(client, superuser)
    assert api.get(reverse(f"admin:governance_{model}_changelist")).status_code == 200


@pytest.mark.django_db
def test_a_hold_placed_and_lifted_in_the_admin_is_audited(client, superuser):
    api = verified_client(client, superuser)
    answer = api.post(reverse("admin:governance_legalhold_add"), {"scope": "global", "reason": "audit 2026"})
    assert answer.status_code == 302, answer.content.decode()[:2000]
    hold = LegalHold.objects.get()
    assert hold.placed_by == superuser
    api.post(reverse("admin:governance_legalhold_change", args=[hold.pk]), {"lift_reason": "done"})
    hold.refresh_from_db()
    assert hold.lifted_at is not None and hold.lift_reason == "done"
    actions = set(AuditLog.objects.values_list("action", flat=True))
    assert {"governance.legal_hold.placed", "governance.legal_hold.lifted"} <= actions


@pytest.mark.django_db
def test_a_request_added_in_the_admin_gets_its_due_date(client, superuser):
    api = verified_client(client, superuser)
    answer = api.post(reverse("admin:governance_datasubjectrequest_add"),
                      {"request_type": "access", "subject_id": str(superuser.pk), "changes": "{}"})  # fmt: skip
    assert answer.status_code == 302, answer.content.decode()[:2000]
    assert DataSubjectRequest.objects.get().due_at is not None
    bad = api.post(reverse("admin:governance_datasubjectrequest_add"),
                   {"request_type": "access", "subject_id": "999999", "changes": "{}"})  # fmt: skip
    assert bad.status_code == 200 and DataSubjectRequest.objects.count() == 1
