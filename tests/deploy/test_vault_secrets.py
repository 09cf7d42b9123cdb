"""Secrets from Vault / OpenBao KV v2. No Vault or OpenBao server can be installed here (not in Debian's
archive, PyPI or npm), so the tests run against a small real HTTP server that implements the KV v2 read
contract: GET /v1/<mount>/data/<path> with X-Vault-Token, answering {"data": {"data": {...}, "metadata": {...}}},
403 {"errors": ["permission denied"]} for a wrong token and 404 {"errors": []} for an unknown path."""

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from config.vault import VaultAwareMapping, VaultUnavailable

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "hvs.test-only-token"
SECRETS = {
    "secret/tezgah": {
        "DJANGO_SECRET_KEY": "from-vault-0123456789-0123456789-0123456789-0123456789",
        "BILLING_GRACE_DAYS": "5",
        "ERP_SHARED_SECRET": "vault-erp-secret",
    }
}


class KV2Handler(BaseHTTPRequestHandler):
    requests = []

    def log_message(self, *args):
        pass

    def _answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        KV2Handler.requests.append((self.path, self.headers.get("X-Vault-Token")))
        if self.headers.get("X-Vault-Token") != TOKEN:
            return self._answer(403, {"errors": ["permission denied"]})
        parts = self.path.split("?")[0].split("/")  # "", "v1", mount, "data", path...
        if len(parts) < 5 or parts[1] != "v1" or parts[3] != "data":
            return self._answer(404, {"errors": []})
        secret = SECRETS.get(f"{parts[2]}/{'/'.join(parts[4:])}")
        if secret is None:
            return self._answer(404, {"errors": []})
        metadata = {"created_time": "2026-12-01T00:00:00Z", "deletion_time": "", "destroyed": False, "version": 3}
        return self._answer(
            200,
            {
                "request_id": "x",
                "lease_id": "",
                "renewable": False,
                "lease_duration": 0,
                "data": {"data": secret, "metadata": metadata},
                "wrap_info": None,
            },
        )


@pytest.fixture
def vault():
    KV2Handler.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), KV2Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_missing_variable_comes_from_the_vault_secret_read_once(vault):
    env = VaultAwareMapping({"VAULT_ADDR": vault, "VAULT_TOKEN": TOKEN})
    assert env["DJANGO_SECRET_KEY"].startswith("from-vault-")
    assert env["BILLING_GRACE_DAYS"] == "5"
    with pytest.raises(KeyError):
        env["NOT_IN_VAULT"]
    assert KV2Handler.requests == [("/v1/secret/data/tezgah", TOKEN)]


def test_the_environment_and_files_win_over_vault(vault, tmp_path):
    secret_file = tmp_path / "erp"
    secret_file.write_text("from-file")
    env = VaultAwareMapping(
        {
            "VAULT_ADDR": vault,
            "VAULT_TOKEN": TOKEN,
            "BILLING_GRACE_DAYS": "2",
            "ERP_SHARED_SECRET_FILE": str(secret_file),
        }
    )
    assert env["BILLING_GRACE_DAYS"] == "2" and env["ERP_SHARED_SECRET"] == "from-file"
    assert KV2Handler.requests == []  # nothing missing, nothing asked


def test_without_vault_addr_nothing_is_asked(vault):
    with pytest.raises(KeyError):
        VaultAwareMapping({"VAULT_TOKEN": TOKEN})["DJANGO_SECRET_KEY"]
    assert KV2Handler.requests == []


@pytest.mark.parametrize(
    ("extra", "message"),
    [({"VAULT_TOKEN": "wrong"}, "refused the token"), ({"VAULT_TOKEN": TOKEN, "VAULT_PATH": "nope"}, "has no secret")],
)
def test_an_unreadable_vault_fails_loudly_without_the_token(vault, extra, message):
    with pytest.raises(VaultUnavailable, match=message) as caught:
        VaultAwareMapping({"VAULT_ADDR": vault, **extra})["DJANGO_SECRET_KEY"]
    assert TOKEN not in str(caught.value) and "wrong" not in str(caught.value)


def test_an_unreachable_vault_is_a_timeout_not_a_hang():
    env = VaultAwareMapping({"VAULT_ADDR": "http://127.0.0.1:9", "VAULT_TOKEN": TOKEN, "VAULT_TIMEOUT_SECONDS": "1"})
    with pytest.raises(VaultUnavailable, match="could not be read"):
        env["DJANGO_SECRET_KEY"]


def _settings_in_subprocess(env_extra, expression):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "VAULT_", "BILLING_"))}
    env.update({"TEZGAH_DOTENV": "", "PYTHONPATH": str(ROOT), **env_extra})
    code = f"import config.settings as s; print({expression})"
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def test_settings_take_the_secret_key_from_vault(vault):
    result = _settings_in_subprocess({"VAULT_ADDR": vault, "VAULT_TOKEN": TOKEN}, "s.SECRET_KEY, s.BILLING_GRACE_DAYS")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["from-vault-0123456789-0123456789-0123456789-0123456789", "5"]


def test_settings_refuse_to_start_with_a_bad_vault_token(vault):
    result = _settings_in_subprocess({"VAULT_ADDR": vault, "VAULT_TOKEN": "wrong"}, "s.SECRET_KEY")
    assert result.returncode != 0 and "ImproperlyConfigured" in result.stderr and "refused the token" in result.stderr
