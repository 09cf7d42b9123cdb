"""An ERP call authenticated by an integration profile is counted under the profile's tenant, not `none`."""

import pytest

from tests.erp.inbound_helpers import CURRENT, profile, send  # noqa: F401 (profile is a fixture)

from .conftest import scrape, value

pytestmark = pytest.mark.django_db


def test_an_inbound_erp_call_counts_under_its_profiles_tenant(client, internal_token, profile):  # noqa: F811
    labels = {"view": "v1:erp-inbound-progress", "method": "POST", "status": "4xx"}
    before = scrape(client)
    payload = {"job_id": "ERP-NO-SUCH-JOB", "status": "running", "progress": 10, "ext_ts": "2026-11-23T05:00:00Z"}
    response = send(client, payload, secret=CURRENT)
    assert response.status_code == 404, response.content
    after = scrape(client)
    assert value(after, "tezgah_http_requests_total", tenant="anadolu", **labels) == (
        value(before, "tezgah_http_requests_total", tenant="anadolu", **labels) + 1
    )
    assert value(after, "tezgah_http_requests_total", tenant="none", **labels) == value(
        before, "tezgah_http_requests_total", tenant="none", **labels
    )
