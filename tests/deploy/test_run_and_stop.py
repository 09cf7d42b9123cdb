"""`make run`'s processes start quietly and stop cleanly: Ctrl-C (SIGINT) or SIGTERM ends every one, exit 0.

The real Procfile runs here under apps.demo.procfile on a scratch SQLite database and free ports (never
8000/8081: other people's servers may be there).
"""

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest
from django.core.management import call_command

from apps.demo import procfile

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = ("Traceback", "SIGKILL", "killing it", "setuptools", "No hostname was supplied", "SecurityWarning")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _demo_env(tmp_path, port, mock_port):
    env = {k: v for k, v in os.environ.items() if k not in ("PROMETHEUS_MULTIPROC_DIR", "REDIS_URL")}
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'run.sqlite3'}",
        TEZGAH_VAR_DIR=str(tmp_path / "var"),
        DJANGO_DEBUG="true",
        DJANGO_SECRET_KEY="run-test-secret-key-" + "x" * 40,
        CELERY_TASK_ALWAYS_EAGER="false",
        ERP_BASE_URL=f"http://127.0.0.1:{mock_port}",
        PORT=str(port),
        MOCK_ERP_PORT=str(mock_port),
    )
    return env


def _wait_ready(url, proc, seconds=40):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the supervisor ended before the web server was ready"
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"{url} not ready within {seconds} s")


def test_the_procfile_processes_start_and_stop_cleanly_on_ctrl_c(tmp_path):
    port, mock_port = _free_port(), _free_port()
    env = _demo_env(tmp_path, port, mock_port)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True, timeout=120
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "apps.demo.procfile", "Procfile", "--stop-timeout", "25"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        _wait_ready(f"http://127.0.0.1:{port}/health/ready", proc)
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does to the foreground group
        out, _ = proc.communicate(timeout=40)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    text = out.decode("utf-8", "replace")
    assert proc.returncode == 0, text[-4000:]
    for word in FORBIDDEN:
        assert word not in text, f"{word!r} in the output:\n{text[-4000:]}"
    entries = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert not [e for e in entries if e["level"] in ("ERROR", "CRITICAL")], text[-4000:]
    assert all(e["ts"].endswith("+00:00") for e in entries), "every timestamp in UTC"
    names = {name for name, _command in procfile.read_procfile(ROOT / "Procfile")}
    stopped = {e["msg"].split()[0] for e in entries if e["proc"] == "supervisor" and " stopped " in e["msg"]}
    assert names <= stopped, f"every process stopped: {stopped}"
    assert any("Warm shutdown" in e["msg"] for e in entries if e["proc"] == "worker")
    assert "all processes stopped cleanly" in text


def _supervise(tmp_path, lines, stop_timeout=5):
    path = tmp_path / "Procfile"
    path.write_text(textwrap.dedent(lines))
    return subprocess.Popen(
        [sys.executable, "-m", "apps.demo.procfile", str(path), "--stop-timeout", str(stop_timeout)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        text=True,
    )


def _started(proc, count):
    seen = []
    while len(seen) < count:
        line = proc.stdout.readline()
        assert line, "supervisor ended early"
        if " started (pid " in line:
            seen.append(line)


def test_sigterm_stops_every_process_and_exits_0(tmp_path):
    proc = _supervise(tmp_path, "# two processes\none: sleep 60\n\ntwo: python3 -c 'import time; time.sleep(60)'\n")
    _started(proc, 2)
    os.kill(proc.pid, signal.SIGTERM)
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, out
    assert "SIGTERM received" in out and "all processes stopped cleanly" in out


def test_a_process_that_ignores_sigterm_is_killed_after_the_timeout_and_that_is_a_failure(tmp_path):
    deaf = 'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print("deaf"); time.sleep(60)'
    stubborn = f"python3 -u -c '{deaf}'"
    proc = _supervise(tmp_path, f"stubborn: {stubborn}\n", stop_timeout=1)
    while "deaf" not in proc.stdout.readline():  # its handler is in place
        pass
    os.kill(proc.pid, signal.SIGINT)
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 1
    assert "still running after 1 s; killing it" in out


def test_a_process_that_ends_by_itself_stops_the_others_and_fails(tmp_path):
    proc = _supervise(tmp_path, "crash: sh -c 'echo boom; exit 3'\nlong: sleep 60\n")
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 1
    assert "crash ended by itself (exit 3)" in out
    assert json.loads(next(line for line in out.splitlines() if "boom" in line))["proc"] == "crash"


def test_a_malformed_procfile_is_refused(tmp_path):
    path = tmp_path / "Procfile"
    path.write_text("web gunicorn\n")
    with pytest.raises(ValueError, match="not a `name: command` line"):
        procfile.read_procfile(path)


def test_welcome_lists_every_procfile_process_and_the_panel(capsys):
    call_command("welcome", port=18999)
    out = capsys.readouterr().out
    for name, _command in procfile.read_procfile(ROOT / "Procfile"):
        assert f"  {name} " in out, f"{name} missing from the welcome text"
    assert "http://localhost:18999/panel/" in out and "http://localhost:18999/admin/" in out


def test_welcome_follows_the_procfile_it_is_given(tmp_path, capsys):
    path = tmp_path / "Procfile"
    path.write_text("web: gunicorn x\nreports: python manage.py make_reports\n")
    call_command("welcome", procfile=str(path))
    out = capsys.readouterr().out
    assert "reports    python manage.py make_reports" in out and "worker" not in out.split("Admin")[0]


def test_ci_runs_make_setup_before_make_test_with_the_setup_on_sqlite():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make setup" in ci and ci.index("make setup") < ci.index("make test")
    setup_line = next(line for line in ci.splitlines() if line.rstrip().endswith("make setup"))
    assert "-u DATABASE_URL" in setup_line and "-u REDIS_URL" in setup_line
