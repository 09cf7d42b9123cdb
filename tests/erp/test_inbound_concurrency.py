"""PostgreSQL: copies of one ERP message arriving at once are applied once, each copy answered 200."""

import threading

import pytest
import requests

from apps.erp import inbound_services
from apps.erp.models import Direction, ErpSync, IntegrationProfile
from apps.jobs.models import JobStatusChange
from tests import factories


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_copies_of_one_message_apply_once(live_server, tenant_a):
    job = factories.JobFactory(tenant=tenant_a, external_id="ERP-RACE")
    profile = IntegrationProfile.objects.create(tenant=tenant_a, name="race", ip_allowlist="127.0.0.1/32")
    inbound_services.set_inbound_token(profile, "race-token-0123456789")
    url = f"{live_server.url}/api/v1/erp/inbound/job/progress"
    headers = {"Authorization": "Bearer race-token-0123456789", "X-Request-Id": "erp-race-00000001"}
    start = threading.Barrier(6)
    answers = []

    def send():
        start.wait()
        answers.append(
            requests.post(url, json={"job_id": "ERP-RACE", "status": "running", "progress": 7}, headers=headers)
        )

    threads = [threading.Thread(target=send) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert [a.status_code for a in answers] == [200] * 6, [a.text for a in answers]
    assert all(a.json() == {"ok": True} for a in answers)
    assert ErpSync.objects.filter(direction=Direction.INBOUND).count() == 1
    assert JobStatusChange.objects.filter(job=job).count() == 1
