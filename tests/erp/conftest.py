"""A real mock ERP process per test module, and a default integration profile pointing at it."""

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from apps.erp import keyring
from apps.erp.models import IntegrationProfile, KeyState
from tests import factories

ROOT = Path(__file__).resolve().parents[2]
SECRET = "current-secret-for-tests-0123456789"
NEXT_SECRET = "next-secret-for-tests-9876543210"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MockErp:
    """Handle on the mock ERP process: its URL and its control API."""

    def __init__(self, url, process):
        self.url = url
        self.process = process

    def plan(self, *, status=None, count=1, delay_ms=0, retry_after=None):
        requests.post(
            f"{self.url}/_mock/plan",
            json={"status": status, "count": count, "delay_ms": delay_ms, "retry_after": retry_after},
            timeout=5,
        ).raise_for_status()

    def set_health(self, ok: bool):
        requests.post(f"{self.url}/_mock/health", json={"ok": ok}, timeout=5).raise_for_status()

    def reset(self):
        requests.post(f"{self.url}/_mock/reset", timeout=5).raise_for_status()

    def received(self) -> list[dict]:
        return requests.get(f"{self.url}/_mock/requests", timeout=5).json()

    def bodies(self) -> list[dict]:
        return [json.loads(r["body"]) for r in self.received()]


def start_mock(*args) -> MockErp:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "apps.erp.mock_server", "--port", str(port), *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/erp/v1/health", timeout=1).status_code == 200:
                return MockErp(url, process)
        except requests.ConnectionError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"mock ERP did not start: {process.stdout.read()}")


@pytest.fixture(scope="module")
def mock_erp_process():
    mock = start_mock("--secret", SECRET, "--secret", NEXT_SECRET)
    yield mock
    mock.process.terminate()
    mock.process.wait(timeout=10)


@pytest.fixture
def mock_erp(mock_erp_process):
    mock_erp_process.reset()
    yield mock_erp_process


@pytest.fixture
def erp_settings(settings):
    settings.ERP_RETRY_JITTER = 0
    settings.ERP_BASE_URL = ""
    settings.ERP_SHARED_SECRET = ""
    settings.KEYRING_CURRENT = ""
    settings.KEYRING_NEXT = ""
    settings.ERP_READ_TIMEOUT_SECONDS = 5
    # The mock ERP is on loopback, which the outbound-URL guard refuses unless allowlisted.
    settings.ERP_ALLOWED_HOSTS = ["127.0.0.1"]
    return settings


@pytest.fixture
def erp_profile(db, mock_erp, erp_settings):
    profile = IntegrationProfile.objects.create(name="default", base_url=mock_erp.url)
    keyring.add_key(profile, SECRET, state=KeyState.CURRENT)
    return profile


@pytest.fixture
def job(tenant_a):
    return factories.JobFactory(tenant=tenant_a)
