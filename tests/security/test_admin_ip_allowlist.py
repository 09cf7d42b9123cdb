"""ADMIN_IP_ALLOWLIST: /admin/* only from listed networks, by the trusted-proxy client IP rule; audited."""

import pytest
from django.urls import reverse

from apps.audit.models import AuditLog
from tests.conftest import verified_client

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/"


@pytest.fixture
def office(settings):
    settings.ADMIN_IP_ALLOWLIST = ["10.20.0.0/16", "2001:db8::/32"]
    settings.TRUSTED_PROXIES = ["192.168.0.0/24"]


def test_an_empty_list_restricts_nothing(client, settings):
    settings.ADMIN_IP_ALLOWLIST = []
    assert client.get(LOGIN, REMOTE_ADDR="203.0.113.7").status_code == 200


@pytest.mark.parametrize("address", ["10.20.3.4", "2001:db8::1"])
def test_a_listed_address_reaches_the_admin(client, office, address):
    assert client.get(LOGIN, REMOTE_ADDR=address).status_code == 200


def test_an_unlisted_address_gets_403_and_an_audit_entry(client, office):
    response = client.get(LOGIN, REMOTE_ADDR="203.0.113.7", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 403
    assert "Access refused" in response.content.decode()
    entry = AuditLog.objects.get(action="security.admin_ip_refused")
    assert entry.client_ip == "203.0.113.7"
    assert entry.payload["path"] == LOGIN and entry.request_id == response["X-Request-Id"]


def test_a_signed_in_superuser_from_elsewhere_is_refused_too(client, office, superuser):
    verified_client(client, superuser)
    response = client.get(reverse("admin:index"), REMOTE_ADDR="203.0.113.7")
    assert response.status_code == 403
    assert AuditLog.objects.get(action="security.admin_ip_refused").actor_id == str(superuser.pk)
    assert client.get(reverse("admin:index"), REMOTE_ADDR="10.20.0.9").status_code == 200


def test_behind_a_trusted_proxy_the_forwarded_client_decides(client, office):
    allowed = client.get(LOGIN, REMOTE_ADDR="192.168.0.5", HTTP_X_FORWARDED_FOR="10.20.1.1")
    refused = client.get(LOGIN, REMOTE_ADDR="192.168.0.5", HTTP_X_FORWARDED_FOR="10.20.1.1, 198.51.100.3")
    assert allowed.status_code == 200
    assert refused.status_code == 403


def test_a_forged_header_from_an_untrusted_peer_changes_nothing(client, office):
    response = client.get(LOGIN, REMOTE_ADDR="203.0.113.7", HTTP_X_FORWARDED_FOR="10.20.1.1")
    assert response.status_code == 403


def test_other_paths_are_not_restricted(client, office):
    assert client.get("/health/live", REMOTE_ADDR="203.0.113.7").status_code == 200
    assert client.get("/api/schema/", REMOTE_ADDR="203.0.113.7").status_code == 200
    assert client.get("/api/v1/jobs/", REMOTE_ADDR="203.0.113.7").status_code == 401  # token clients, not staff


# ---------------------------------------------------------------- issue 11: every staff surface, one entry per window

OUTSIDE = "203.0.113.7"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/panel/"),
        ("get", "/panel"),
        ("get", "/reports/summary"),
        ("get", "/api/v1/reports/summary"),
        ("post", "/api/v1/auth/token/"),
        ("get", "/forensics/audit/export?format=json"),
        ("post", "/admin/erp/replay"),
    ],
)
def test_a_verified_session_from_a_refused_address_reaches_no_staff_surface(client, office, superuser, method, path):
    from knox.models import AuthToken

    verified_client(client, superuser)
    response = getattr(client, method)(path, REMOTE_ADDR=OUTSIDE, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 403
    if not path.startswith(("/panel", "/admin")):
        assert response["Content-Type"] == "application/problem+json"
        assert response.json()["type"] == "urn:tezgah:problem:ip-not-allowed"
    assert not AuthToken.objects.exists()


def test_the_same_session_from_a_listed_address_gets_the_panel_and_a_token(client, office, superuser):
    verified_client(client, superuser)
    assert client.get("/panel/", REMOTE_ADDR="10.20.0.9").status_code == 200
    assert client.post("/api/v1/auth/token/", REMOTE_ADDR="10.20.0.9").status_code in (200, 201)


def _refused_counter(client, settings) -> float:
    settings.INTERNAL_TOKEN = "internal-token-for-tests-0123456789"
    text = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {settings.INTERNAL_TOKEN}").content.decode()
    for line in text.splitlines():
        if line.startswith('tezgah_admin_ip_refused_total{surface="admin"}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_a_flood_of_refusals_writes_one_audit_entry_per_address_per_window(client, office, settings):
    import time

    settings.ADMIN_IP_REFUSAL_AUDIT_SECONDS = 300
    before = _refused_counter(client, settings)
    for _ in range(30):
        assert client.get(LOGIN, REMOTE_ADDR=OUTSIDE).status_code == 403
    assert client.get(LOGIN, REMOTE_ADDR="198.51.100.9").status_code == 403
    entries = AuditLog.objects.filter(action="security.admin_ip_refused")
    assert sorted(entries.values_list("client_ip", flat=True)) == ["198.51.100.9", OUTSIDE]
    assert entries.first().payload["window_seconds"] == 300
    assert _refused_counter(client, settings) == before + 31

    # When the address's window ends (fixed clock windows, audit.services.record_once_per_window), the next
    # refusal is audited again.
    settings.ADMIN_IP_REFUSAL_AUDIT_SECONDS = 1
    assert client.get(LOGIN, REMOTE_ADDR=OUTSIDE).status_code == 403
    assert entries.filter(client_ip=OUTSIDE).count() == 2
    this_window = int(time.time())
    while int(time.time()) == this_window:
        time.sleep(0.02)
    assert client.get(LOGIN, REMOTE_ADDR=OUTSIDE).status_code == 403
    assert entries.filter(client_ip=OUTSIDE).count() == 3


def test_a_bad_cidr_stops_start_up(monkeypatch):
    import importlib

    from django.core.exceptions import ImproperlyConfigured

    import config.settings as settings_module

    monkeypatch.setenv("ADMIN_IP_ALLOWLIST", "10.0.0.0/8,not-a-network")
    with pytest.raises(ImproperlyConfigured, match="ADMIN_IP_ALLOWLIST"):
        importlib.reload(settings_module)
    monkeypatch.delenv("ADMIN_IP_ALLOWLIST")
    importlib.reload(settings_module)
