"""Settings fail loudly on bad values and read secrets from *_FILE variables."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _settings(env_overrides):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL"))}
    env.update({"DJANGO_SECRET_KEY": "x" * 60, "TEZGAH_VAR_DIR": "/tmp/tezgah-settings-test"})
    env.update(env_overrides)
    code = (
        "from django.conf import settings; print(settings.DEBUG, settings.SECRET_KEY[:6], settings.SECURE_SSL_REDIRECT)"
    )
    return subprocess.run(
        [sys.executable, "-c", "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='config.settings'; " + code],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip


def test_a_boolean_it_cannot_parse_stops_start_up_with_its_name():
    result = _settings({"DJANGO_DEBUG": "maybe"})
    assert result.returncode != 0
    assert "DJANGO_DEBUG='maybe' is not a boolean" in result.stderr


def test_a_bad_number_stops_start_up_with_its_name():
    result = _settings({"DJANGO_SECURE_HSTS_SECONDS": "a year"})
    assert result.returncode != 0
    assert "DJANGO_SECURE_HSTS_SECONDS='a year' is not a whole number" in result.stderr


def test_production_refuses_to_start_without_a_secret_key():
    result = _settings({"DJANGO_SECRET_KEY": "", "DJANGO_DEBUG": "false"})
    assert result.returncode != 0
    assert "Set DJANGO_SECRET_KEY" in result.stderr


def test_secrets_can_come_from_a_file(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("filesecret" + "y" * 50)
    env = {"DJANGO_SECRET_KEY_FILE": str(secret), "DJANGO_DEBUG": "false"}
    result = subprocess.run(  # the variable must be absent, not empty, for *_FILE to be read
        [sys.executable, "-c", "import os; os.environ.pop('DJANGO_SECRET_KEY', None); "
         "os.environ['DJANGO_SETTINGS_MODULE']='config.settings'; from django.conf import settings; "
         "print(settings.SECRET_KEY[:10])"],
        cwd=ROOT, env={**{k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}, **env},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "filesecret"


@pytest.mark.parametrize(("value", "expected"), [("true", "True"), ("0", "False"), ("ON", "True")])
def test_booleans_accept_the_usual_spellings(value, expected):
    result = _settings({"DJANGO_DEBUG": value})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == expected
