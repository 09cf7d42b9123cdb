"""The suite's settings do not depend on the developer's `.env` or on variables they exported.

`make run` writes a `.env` with `ERP_BASE_URL`; before config.pytest_environment the ERP tests then failed
with `UNIQUE constraint failed: erp_profile_one_per_tenant` (issue 12). CI runs `make setup` before
`make test`, so a real `.env` is present there too.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from config import pytest_environment

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import json, os
from django.conf import settings

def test_dump_settings():
    values = {name: repr(getattr(settings, name)) for name in dir(settings) if name.isupper()}
    with open(os.environ["PROBE_OUT"], "w") as out:
        json.dump(values, out)
"""

HOSTILE = {
    "ERP_BASE_URL": "http://127.0.0.1:9/erp",
    "ERP_SHARED_SECRET": "exported-secret",
    "ERP_BEARER_TOKEN": "exported-token",
    "ADMIN_IP_ALLOWLIST": "10.0.0.0/8",
    "INCIDENT_LOCK_ENABLED": "true",
    "EXPORT_S3_BUCKET": "exported-bucket",
    "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
    "DJANGO_DEBUG": "true",
    "DJANGO_SECRET_KEY": "exported-secret-key",
    "CELERY_TASK_ALWAYS_EAGER": "false",
    "CELERY_BROKER_URL": "redis://127.0.0.1:9/0",
    "THROTTLE_TOKEN_RATE": "1/day",
    "LOG_LEVEL": "CRITICAL",
    "DEMO_PASSWORD": "exported-demo-password",
    "DJANGO_SETTINGS_MODULE": "no.such.settings",
    "MOCK_ERP_PORT": "1",
}
DOTENV = """\
DJANGO_DEBUG=true
DJANGO_SECRET_KEY=dotenv-secret-key
ERP_BASE_URL=http://127.0.0.1:8081
ERP_SHARED_SECRET=dotenv-secret
INCIDENT_LOCK_ENABLED=true
ADMIN_IP_ALLOWLIST=192.0.2.0/24
TEZGAH_VAR_DIR=/tmp/dotenv-var
"""


def _suite_settings(tmp_path, name, extra_env):
    probe = tmp_path / "test_probe.py"
    probe.write_text(textwrap.dedent(PROBE))
    out = tmp_path / f"{name}.json"
    env = {**os.environ, **extra_env, "PROBE_OUT": str(out)}
    command = [sys.executable, "-m", "pytest", str(probe), "-q", "-c", str(ROOT / "pyproject.toml")]
    command += ["--rootdir", str(ROOT), "-p", "no:cacheprovider", "-p", "no:randomly", "-p", "no:xdist"]
    result = subprocess.run(
        command,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads(out.read_text())


def test_a_hostile_dotenv_and_exported_variables_do_not_change_the_suites_settings(tmp_path):
    dotenv = tmp_path / "hostile.env"
    dotenv.write_text(DOTENV)
    clean = _suite_settings(tmp_path, "clean", {})
    hostile = _suite_settings(tmp_path, "hostile", {**HOSTILE, "TEZGAH_DOTENV": str(dotenv)})
    changed = {name: (clean.get(name), hostile.get(name)) for name in clean.keys() | hostile.keys()}
    changed = {name: pair for name, pair in changed.items() if pair[0] != pair[1]}
    assert not changed, f"settings the developer's environment changed: {changed}"
    assert clean["ERP_BASE_URL"] == "''" and clean["INCIDENT_LOCK_ENABLED"] == "False"
    assert clean["ADMIN_IP_ALLOWLIST"] == "[]" and clean["EXPORT_S3_BUCKET"] == "''"
    assert clean["DEBUG"] == "False"


def test_every_variable_the_settings_read_is_cleared_or_chosen_by_ci():
    """Recorded while the settings load, so a name read through a helper (`_cidr_list(name)`) counts too."""
    code = textwrap.dedent(
        """
        import json, environ
        seen = []
        original = environ.Env.get_value
        def recording(self, var, *args, **kwargs):
            seen.append(var)
            return original(self, var, *args, **kwargs)
        environ.Env.get_value = recording
        import config.settings
        print(json.dumps(sorted(set(seen))))
        """
    )
    env = {**os.environ, "DJANGO_SECRET_KEY": "x" * 60}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    read = set(json.loads(result.stdout.strip().splitlines()[-1]))
    assert {"ERP_BASE_URL", "ADMIN_IP_ALLOWLIST", "INCIDENT_LOCK_ENABLED", "EXPORT_S3_BUCKET"} <= read
    not_cleared = read - pytest_environment.variables_to_clear() - pytest_environment.PASS_THROUGH
    assert not not_cleared, f"settings read variables the suite does not clear: {sorted(not_cleared)}"


def test_the_suite_itself_runs_without_the_project_variables():
    assert os.environ[pytest_environment.DOTENV_VARIABLE] == ""
    for name in ("ERP_BASE_URL", "ADMIN_IP_ALLOWLIST", "INCIDENT_LOCK_ENABLED", "EXPORT_S3_BUCKET"):
        assert name not in os.environ
    from django.conf import settings

    assert settings.ERP_BASE_URL == ""


def test_each_xdist_worker_gets_its_own_var_folder_and_redis_database():
    environ = {"PYTEST_XDIST_WORKER": "gw1", "REDIS_URL": "redis://127.0.0.1:6379/15"}
    assert pytest_environment.separate_xdist_worker(environ) == "gw1"
    assert environ["TEZGAH_VAR_DIR"] == "var/test-gw1"
    assert environ["REDIS_URL"] == "redis://127.0.0.1:6379/14"
    first = {"PYTEST_XDIST_WORKER": "gw0", "REDIS_URL": "redis://127.0.0.1:6379/15"}
    pytest_environment.separate_xdist_worker(first)
    assert first["REDIS_URL"] == "redis://127.0.0.1:6379/15" and first["TEZGAH_VAR_DIR"] == "var/test-gw0"
    # Outside xdist nothing changes; without Redis no REDIS_URL appears.
    single = {"REDIS_URL": "redis://127.0.0.1:6379/15"}
    assert pytest_environment.separate_xdist_worker(single) is None and single == {
        "REDIS_URL": "redis://127.0.0.1:6379/15"
    }
    no_redis = {"PYTEST_XDIST_WORKER": "gw1"}
    pytest_environment.separate_xdist_worker(no_redis)
    assert "REDIS_URL" not in no_redis


def test_this_worker_runs_on_its_own_settings():
    from django.conf import settings

    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:  # under `make test`'s workers; a plain `pytest` run has the shared folder
        assert Path(settings.VAR_DIR).name == f"test-{worker}"
    else:
        assert Path(settings.VAR_DIR).name == "test"
