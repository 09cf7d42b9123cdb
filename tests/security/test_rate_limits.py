"""DRF throttles on sign-in steps, token issuing and uploads: 429 with Retry-After once the rate is spent."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from tests.conftest import verified_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def rates(settings):
    def set_rates(**scopes):
        settings.REST_FRAMEWORK = {
            **settings.REST_FRAMEWORK,
            "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], **scopes},
        }

    return set_rates


def test_admin_sign_in_is_throttled_per_client_ip(client, rates):
    rates(login="3/min", login_user="100/min")
    login = reverse("admin:login")
    for _ in range(3):
        assert client.post(login, {"username": "x", "password": "y"}, REMOTE_ADDR="198.51.100.1").status_code == 200
    throttled = client.post(login, {"username": "x", "password": "y"}, REMOTE_ADDR="198.51.100.1")
    assert throttled.status_code == 429
    assert int(throttled["Retry-After"]) > 0
    # Another address has its own budget; reading the form is never throttled.
    assert client.post(login, {"username": "x", "password": "y"}, REMOTE_ADDR="198.51.100.2").status_code == 200
    assert client.get(login, REMOTE_ADDR="198.51.100.1").status_code == 200


def test_one_hammered_account_spends_its_own_budget_not_its_neighbours(client, rates):
    rates(login="6/min", login_user="2/min")
    login = reverse("admin:login")

    def attempt(name, ip="198.51.100.1"):
        return client.post(login, {"username": name, "password": "y"}, REMOTE_ADDR=ip).status_code

    assert [attempt("hedef") for _ in range(5)] == [200, 200, 429, 429, 429]
    # The three refused tries spent nothing of the address's ceiling: four other people still get through.
    assert [attempt(f"komsu{i}") for i in range(4)] == [200] * 4
    assert attempt("komsu9") == 429, "then the address's ceiling (6/min) holds, whatever the names"
    assert attempt("hedef", ip="198.51.100.2") == 200, "the account from another address has its own budget"


def test_the_totp_step_is_throttled_too(client, rates):
    rates(login="1/min")
    verify = reverse("admin:mfa_verify")
    client.post(verify, {"token": "000000"})
    assert client.post(verify, {"token": "000001"}).status_code == 429


def test_uploads_are_throttled_per_user(client, role_users, tenant_a, rates):
    rates(upload="1/hour")
    verified_client(client, role_users["operator"])
    url = reverse("admin:catalog_machine_import")

    def upload():
        body = "tenant,code,name,is_active,location\nanadolu,M1,Fine,1,\n"
        data = {"format": "0", "resource": "0", "import_file": SimpleUploadedFile("m.csv", body.encode(), "text/csv")}
        return client.post(url, data)

    assert upload().status_code == 200
    throttled = upload()
    assert throttled.status_code == 429 and int(throttled["Retry-After"]) > 0


# Token issuing (THROTTLE_TOKEN_RATE) is covered by tests/accounts/test_tokens.py.
