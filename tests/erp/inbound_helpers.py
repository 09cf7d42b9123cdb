"""Shared by the inbound and key-rotation tests: a profile with a token and keys, and signed requests."""

import json

import pytest

from apps.erp import inbound_services, keyring, signing
from apps.erp.models import IntegrationProfile, KeyState

URL = "/api/v1/erp/inbound/job/progress"
TOKEN = "inbound-token-of-anadolu-0123456789"
CURRENT = "current-secret-anadolu"
NEXT = "next-secret-anadolu"


@pytest.fixture
def profile(tenant_a):
    profile = IntegrationProfile.objects.create(tenant=tenant_a, name="anadolu-erp", ip_allowlist="127.0.0.1/32")
    inbound_services.set_inbound_token(profile, TOKEN)
    keyring.add_key(profile, CURRENT, state=KeyState.CURRENT)
    keyring.add_key(profile, NEXT, state=KeyState.NEXT)
    return profile


def encode(payload) -> bytes:
    return json.dumps(payload).encode() if not isinstance(payload, bytes) else payload


def send(client, payload, *, token=TOKEN, secret=None, signature=None, ip="127.0.0.1", **headers):
    """POST `payload` as the ERP would: bearer token, X-Signature over the exact bytes when a secret is given."""
    body = encode(payload)
    extra = {"REMOTE_ADDR": ip, **{f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}}
    if token is not None:
        extra["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    if secret is not None:
        extra["HTTP_X_SIGNATURE"] = signing.x_signature(secret, body)
    if signature is not None:
        extra["HTTP_X_SIGNATURE"] = signature
    return client.generic("POST", URL, body, content_type="application/json", **extra)


def problem(response, status: int, slug: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = json.loads(response.content)
    assert body["type"] == f"urn:tezgah:problem:{slug}", body
    return body
