"""`make run`'s supervisor: starts every Procfile process, prefixes its lines, and stops them all cleanly.

    python -m apps.demo.procfile [Procfile] [--stop-timeout 30]

honcho did this before, and cannot stop cleanly (honcho 2.0): after SIGINT or SIGTERM it exits 130/143 whatever
its processes did (hence make's "Error 143"), it sends SIGTERM to each process *group*, so Celery's pool
children are terminated under the worker's warm shutdown ("ERROR ... exited with signal 15"), and it SIGKILLs
whatever still runs 5 s after the first process stopped (a constant, not an option) - a worker still
finishing a task. Here SIGINT (Ctrl-C) or SIGTERM sends SIGTERM to each process itself (gunicorn's master and
Celery's main process stop their own children), waits up to --stop-timeout seconds, and exits 0 when
every process stopped on its own. Only a process still running after the timeout is killed, and that is a
failure (exit 1), as is a process that ends by itself while the others run.

Every line comes out as one JSON object with a UTC `ts`, like apps.core.logging's: a process's JSON log
line is passed through with `proc` added, any other line (a banner, a plain print) is wrapped.
Django-free, so it starts at once and is not affected by the settings.
"""

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

PROCFILE_LINE = re.compile(r"^([A-Za-z0-9_-]+):\s*(.+)$")


def read_procfile(path) -> list[tuple[str, str]]:
    """(name, command) pairs in file order; blank lines and `#` comments skipped."""
    processes = []
    for raw in Path(path).read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = PROCFILE_LINE.match(line)
        if not match:
            raise ValueError(f"{path}: not a `name: command` line: {raw!r}")
        processes.append((match.group(1), match.group(2)))
    return processes


def _now():
    return datetime.now(tz=UTC).isoformat(timespec="milliseconds")


class Output:
    """One writer for every process, so lines never interleave."""

    def __init__(self, stream=sys.stdout):
        self.stream = stream
        self.lock = threading.Lock()

    def line(self, proc, text):
        text = text.rstrip("\r\n")
        if not text.strip():
            return
        entry = None
        if text.startswith("{"):
            try:
                entry = json.loads(text)
            except ValueError:
                entry = None
        if not isinstance(entry, dict) or "ts" not in entry:
            entry = {"ts": _now(), "level": "INFO", "logger": proc, "msg": text}
        entry = {"proc": proc, **entry}
        with self.lock:
            self.stream.write(json.dumps(entry, ensure_ascii=False) + "\n")
            self.stream.flush()

    def system(self, msg, level="INFO"):
        self.line("supervisor", json.dumps({"ts": _now(), "level": level, "logger": "supervisor", "msg": msg}))


def _pump(proc, name, output):
    for raw in iter(proc.stdout.readline, b""):
        output.line(name, raw.decode("utf-8", "replace"))
    proc.stdout.close()


def run(processes, *, stop_timeout=30.0, output=None) -> int:
    output = output or Output()
    stop = threading.Event()
    signalled = []

    def request_stop(signum, frame):
        signalled.append(signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    running, pumps = {}, []
    for name, command in processes:
        # Each process in its own session: a terminal's Ctrl-C reaches only this supervisor, which then
        # stops the processes in an orderly way instead of every child getting SIGINT at once.
        proc = subprocess.Popen(  # noqa: S603 -- the project's own Procfile
            ["/bin/sh", "-c", f"exec {command}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        running[name] = proc
        pump = threading.Thread(target=_pump, args=(proc, name, output), daemon=True)
        pump.start()
        pumps.append(pump)
        output.system(f"{name} started (pid {proc.pid})")

    failed = False
    while not stop.wait(0.2):
        ended = [(n, p.returncode) for n, p in running.items() if p.poll() is not None]
        if ended:
            for name, code in ended:
                output.system(f"{name} ended by itself (exit {code}); stopping the others", level="ERROR")
            failed = True
            break
    if signalled:
        output.system(f"{signalled[0]} received; stopping every process (up to {stop_timeout:g} s)")
    for proc in running.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + stop_timeout
    for name, proc in running.items():
        try:
            code = proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            output.system(f"{name} still running after {stop_timeout:g} s; killing it", level="ERROR")
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            failed = True
            continue
        # A process without a SIGTERM handler of its own ends by that signal: it stopped as asked.
        if code not in (0, -signal.SIGTERM):
            failed = True
        output.system(f"{name} stopped ({'exit ' + str(code) if code >= 0 else 'by SIGTERM'})")
    for pump in pumps:
        pump.join(timeout=2)
    output.system("stopped with errors" if failed else "all processes stopped cleanly")
    return 1 if failed else 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("procfile", nargs="?", default="Procfile")
    parser.add_argument("--stop-timeout", type=float, default=30.0, help="seconds each stop may take; default 30")
    args = parser.parse_args(argv)
    return run(read_procfile(args.procfile), stop_timeout=args.stop_timeout)


if __name__ == "__main__":
    sys.exit(main())
