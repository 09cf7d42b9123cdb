"""pytest plugin (`-p config.pytest_environment` in pyproject's addopts): the suite's settings come from the suite.

A developer's `.env` (which `make run` writes, with `ERP_BASE_URL` pointing at the mock ERP) and whatever
they exported (`ERP_*`, `ADMIN_IP_ALLOWLIST`, `INCIDENT_LOCK_ENABLED`, `EXPORT_S3_BUCKET`, ...) changed what
the tests saw: with `ERP_BASE_URL` set, `erp.default_profile()` creates a profile and the ERP fixtures then
hit `erp_profile_one_per_tenant`. So before pytest-django imports the settings, every variable that
`config/settings.py` reads (and its `NAME_FILE` twin) is removed from the environment, except the ones
that choose the services the suite runs on, and `.env` is not read at all. pyproject's `[tool.pytest]` env
list then sets the suite's own values. Test knobs that settings do not read (`CI`, `FUZZ_EXAMPLES`) are
left alone. Subprocesses the tests start (gunicorn, Celery workers) inherit the cleaned environment.

It lives in `config/` rather than `tests/` because pytest loads `-p` plugins before it puts the
project on `sys.path`; `config` is importable from the editable install.
"""

import ast
import os
from pathlib import Path

import pytest

SETTINGS_FILE = Path(__file__).resolve().parent / "settings.py"
# The services the suite runs on: CI points these at its PostgreSQL and Redis (README, "Tests and CI").
PASS_THROUGH = frozenset({"DATABASE_URL", "REDIS_URL"})
# Read by other programs of the project (the mock ERP, pytest-django), not through settings.py.
ALSO_CLEARED = frozenset(
    {
        "DJANGO_SETTINGS_MODULE",
        "MOCK_ERP_HOST",
        "MOCK_ERP_PORT",
        "MOCK_ERP_SECRETS",
        "MOCK_ERP_LOG",
        "MOCK_FAILURE_RATE",
    }
)
# Settings read `.env` from this file; empty reads none.
DOTENV_VARIABLE = "TEZGAH_DOTENV"


def settings_variables(source: str | None = None) -> set[str]:
    """Every environment variable name settings.py reads: the upper-case string literal that is the first
    argument of a call (`env.str("NAME", ...)`, `_cidr_list("NAME")`, `os.environ.setdefault("NAME", ...)`)."""
    tree = ast.parse(source if source is not None else SETTINGS_FILE.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                value = first.value
                if value.isupper() and value.replace("_", "").isalnum() and not value[0].isdigit():
                    names.add(value)
    return names


def variables_to_clear() -> set[str]:
    names = settings_variables() | ALSO_CLEARED
    return ({*names, *(f"{n}_FILE" for n in names)}) - PASS_THROUGH


def isolate(environ=os.environ) -> list[str]:
    """Remove the project's variables from `environ` and switch `.env` off; returns what was removed."""
    removed = sorted(name for name in variables_to_clear() if name in environ)
    for name in removed:
        del environ[name]
    environ[DOTENV_VARIABLE] = ""
    return removed


def separate_xdist_worker(environ=os.environ) -> str | None:
    """Under pytest-xdist (`make test` runs two workers), give each worker its own var/ folder and Redis
    database; pytest-django already gives each its own test database (test_<name>_gw0, ...). Without this,
    one worker's `cache.clear()` or export file would land in the other's test. Returns the worker id."""
    worker = environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return None
    number = int(worker.removeprefix("gw"))
    environ["TEZGAH_VAR_DIR"] = f"var/test-{worker}"
    redis_url = environ.get("REDIS_URL")
    if redis_url:
        base, _, db = redis_url.rpartition("/")
        # CI's db 15 becomes 15, 14, ... (one per worker, counting down so none reaches a developer's db 0).
        environ["REDIS_URL"] = f"{base}/{int(db or 0) - number}" if db.isdigit() else redis_url
    return worker


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_load_initial_conftests(early_config, parser, args):
    # A wrapper runs before every plain implementation of this hook: pytest-env's (which then sets the
    # suite's defaults) and pytest-django's (which imports the settings).
    isolate()
    separate_xdist_worker()
    return (yield)
