"""Retention of the SIEM backlog (only what every destination accepted goes) and of security events (a tenant
hold reaches them through the people who work on that tenant)."""

import uuid
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from apps.accounts import services as account_services
from apps.governance import constants, retention, services
from apps.governance.models import HoldScope
from apps.security.models import SecurityEvent
from apps.siem.models import SiemDestination, SiemRecord
from tests.conftest import make_user

OLD = timedelta(days=4000)


def _records(n, *, age=OLD):
    made = [
        SiemRecord.objects.create(event_id=uuid.uuid4(), source="audit", source_ref=SiemRecord.objects.count() + 1,
                                  event="test.event", level="info", ts=timezone.now(), envelope={}, message="m")
        for _ in range(n)
    ]  # fmt: skip
    SiemRecord.objects.filter(pk__in=[r.pk for r in made]).update(created_at=timezone.now() - age)
    return made


def _dry(name):
    return next(r for r in retention.dry_run() if r["data_class"] == name)["count"]


@pytest.mark.django_db
def test_siem_records_go_only_once_every_destination_has_accepted_them():
    records = _records(6)
    assert _dry(constants.SIEM_BACKLOG) == 0, "no destination yet: nothing has been shipped, nothing goes"
    assert retention.apply_class(constants.SIEM_BACKLOG).deleted == 0
    SiemDestination.objects.create(endpoint="tcp://siem-a:514", last_sent_id=records[4].pk)
    SiemDestination.objects.create(endpoint="tls://siem-b:6514", last_sent_id=records[1].pk)
    assert _dry(constants.SIEM_BACKLOG) == 2, "the slowest destination's cursor bounds what may go"
    run = retention.apply_class(constants.SIEM_BACKLOG, batch=1)
    assert run.deleted == 2
    assert sorted(SiemRecord.objects.values_list("pk", flat=True)) == [r.pk for r in records[2:]]


@pytest.mark.django_db
def test_recent_shipped_siem_records_stay_and_holds_keep_old_ones():
    old, recent = _records(2), _records(1, age=timedelta(days=1))
    SiemDestination.objects.create(endpoint="tcp://siem-a:514", last_sent_id=recent[0].pk)
    hold = services.place_hold(None, scope=HoldScope.OBJECT_TYPE, object_type=constants.SIEM_BACKLOG, reason="case")
    assert retention.apply_class(constants.SIEM_BACKLOG).deleted == 0
    services.lift_hold(hold, None, reason="closed")
    assert retention.apply_class(constants.SIEM_BACKLOG).deleted == len(old)
    assert list(SiemRecord.objects.values_list("pk", flat=True)) == [recent[0].pk]


def _event(actor, **kw):
    event = SecurityEvent.objects.create(event_type="login_failed", severity="warning", actor=actor, **kw)
    SecurityEvent.objects.filter(pk=event.pk).update(created_at=timezone.now() - OLD)
    return event


@pytest.mark.django_db
def test_a_tenant_hold_keeps_the_security_events_of_everyone_working_on_that_tenant(tenant_a, tenant_b):
    direct = make_user("direct_a", tenants=[tenant_a])
    group = Group.objects.create(name="night shift of A")
    account_services.grant_tenant_access(group, tenant_a)
    through_group = make_user("group_a")
    through_group.groups.add(group)
    other = make_user("only_b", tenants=[tenant_b])
    kept = {_event(direct).pk, _event(through_group).pk}
    _event(other), _event(None, username="nobody")
    hold = services.place_hold(None, scope=HoldScope.TENANT, tenant=tenant_a, reason="litigation")
    assert _dry(constants.SECURITY_EVENTS) == 2
    assert retention.apply_class(constants.SECURITY_EVENTS).deleted == 2
    assert set(SecurityEvent.objects.values_list("pk", flat=True)) == kept, "anonymous and other-tenant events go"
    services.lift_hold(hold, None, reason="case closed")
    assert retention.apply_class(constants.SECURITY_EVENTS).deleted == 2
    assert not SecurityEvent.objects.exists()
