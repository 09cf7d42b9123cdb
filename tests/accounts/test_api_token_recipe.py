"""Issue 12: the README's curl recipe for an API token works, run as written against a real HTTP server."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import requests

from tests.conftest import PASSWORD, confirmed_device, make_user, totp_code

README = Path(__file__).resolve().parents[2] / "README.md"


def recipe() -> str:
    text = README.read_text(encoding="utf-8")
    match = re.search(r"<!-- api-token-recipe:[^>]*-->\s*```sh\n(.*?)```", text, re.S)
    assert match, "README lost its api-token-recipe block"
    return match.group(1)


def run_recipe(live_server, user, code):
    assert shutil.which("curl"), "the recipe needs curl"
    script = recipe().replace("BASE=http://127.0.0.1:8000", f"BASE={live_server.url}", 1)
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        env={"PATH": "/usr/bin:/bin", "TEZGAH_USER": user.username, "TEZGAH_PASSWORD": PASSWORD, "TEZGAH_CODE": code},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.django_db(transaction=True)
def test_the_readme_recipe_gets_a_token_that_authenticates_the_api(live_server, tenant_a):
    operator = make_user("operator_a", roles=["operator"], tenants=[tenant_a])
    device = confirmed_device(operator)

    done = run_recipe(live_server, operator, totp_code(device))

    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout)
    assert set(body) == {"expiry", "token"}
    jobs = requests.get(
        f"{live_server.url}/api/v1/jobs/", headers={"Authorization": f"Token {body['token']}"}, timeout=10
    )
    assert jobs.status_code == 200, jobs.text
    assert requests.get(f"{live_server.url}/api/v1/jobs/", timeout=10).status_code in (401, 403)


@pytest.mark.django_db(transaction=True)
def test_the_recipe_with_a_wrong_code_gets_no_token(live_server, tenant_a):
    operator = make_user("operator_a", roles=["operator"], tenants=[tenant_a])
    device = confirmed_device(operator)
    near = {totp_code(device, offset_steps=s) for s in range(-3, 4)}
    wrong = next(c for c in ("000000", "111111", "123456", "654321") if c not in near)

    done = run_recipe(live_server, operator, wrong)

    assert done.returncode != 0, "curl -f fails on the 403 problem"
    assert "403" in done.stderr
    assert not operator.auth_token_set.exists()
