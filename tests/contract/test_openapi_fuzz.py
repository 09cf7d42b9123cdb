"""Schemathesis against /api/schema/: generated requests to every operation, through the real WSGI app.

No answer may be a 5xx, and none may contradict the schema (status code, content type, headers, body).
Examples are bounded (FUZZ_EXAMPLES, default 15 per operation) so the run fits in `make test`.
"""

import os

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from knox.models import AuthToken
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from apps.erp import inbound_services
from apps.erp.models import IntegrationProfile
from tests import factories
from tests.conftest import make_user

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "15"))
INBOUND_TOKEN = "fuzz-inbound-token-0123456789"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture
def world(tenant_a):
    """A superuser (every capability), a few jobs, and an ERP profile the inbound endpoint accepts."""
    root = make_user("fuzz-root", superuser=True)
    for external_id in ("ERP-1", "ERP-2"):
        factories.JobFactory(tenant=tenant_a, external_id=external_id)
    profile = IntegrationProfile.objects.create(tenant=tenant_a, name="fuzz", ip_allowlist="127.0.0.0/8")
    inbound_services.set_inbound_token(profile, INBOUND_TOKEN)
    return root


@pytest.fixture
def keep_connection():
    """Requests go straight into the WSGI app, not through Django's test client, which is what normally stops
    request_started/finished from closing the test's database connection (and its transaction)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def api_schema(db, world, keep_connection):
    from config.wsgi import application

    return schemathesis.openapi.from_wsgi("/api/schema/", application)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@hypothesis_settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_honours_its_contract(case, world):
    if case.operation.definition.raw.get("security") == [{"erpBearer": []}]:
        authorization = f"Bearer {INBOUND_TOKEN}"
    else:
        # A fresh token per call: a generated call to /auth/token/revoke/ must not starve the next ones.
        token_row, token = AuthToken.objects.create(user=world)
        authorization = f"Token {token}"
    response = case.call(headers={"Authorization": authorization})
    if authorization.startswith("Token "):
        # Knox walks every token of the user on each request: left in place, thousands of spent tokens made the
        # run quadratic (the whole test is one transaction, so nothing else removes them).
        AuthToken.objects.filter(pk=token_row.pk).delete()
    checks = CHECKS
    if case.operation.path == "/internal/erp/health" and response.status_code == 503:
        # The probe's documented "not ok" answer (no ERP is reachable here), not a server error.
        checks = [c for c in CHECKS if c is not not_a_server_error]
    case.validate_response(response, checks=checks)
