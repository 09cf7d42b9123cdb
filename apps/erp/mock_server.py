"""A mock ERP for development and tests: the two endpoints of the ERP contract, plus a control API.

Standard library only (http.server), so it runs as its own process or container without Django:
`python -m apps.erp.mock_server --port 8081` or `manage.py run_mock_erp`.

  POST /erp/v1/jobs/update   200 {"ok": true}; 401 when a secret is set and X-Signature does not verify
  GET  /erp/v1/health        200 ok
  POST /_mock/plan           {"status": 500, "count": 2, "delay_ms": 0, "retry_after": "3"}: the next
                             `count` updates answer `status` (or just wait `delay_ms` and succeed)
  POST /_mock/health         {"ok": false} makes /erp/v1/health answer 503
  POST /_mock/reset          forget requests and plans
  GET  /_mock/requests       every update received, with headers, body and whether its signature verified
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import random
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def _sign(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


class MockState:
    """What the mock was told to do, and what it saw; shared by the server's threads."""

    def __init__(self, *, secrets=(), failure_rate=0.0, log_path=None, conflict_on_duplicate=False):
        self.secrets = [s for s in secrets if s]
        self.failure_rate = failure_rate
        self.log_path = log_path
        self.conflict_on_duplicate = conflict_on_duplicate
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        with self.lock:
            self.requests = []
            self.plans = []
            self.healthy = True
            self.seen_keys = set()

    def next_plan(self):
        with self.lock:
            if not self.plans:
                return None
            plan = self.plans[0]
            plan["count"] -= 1
            if plan["count"] <= 0:
                self.plans.pop(0)
            return dict(plan)

    def record(self, entry):
        with self.lock:
            self.requests.append(entry)
            if self.log_path:
                with open(self.log_path, "a", encoding="utf-8") as log:
                    log.write(json.dumps(entry, ensure_ascii=False) + "\n")


class MockErpHandler(BaseHTTPRequestHandler):
    server_version = "TezgahMockERP/1"
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, keep-alive clients wait ~40 ms for each reply.
    disable_nagle_algorithm = True

    @property
    def state(self) -> MockState:
        return self.server.state

    def log_message(self, format, *args):  # access log to stderr only when asked
        if self.server.verbose:
            super().log_message(format, *args)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _reply(self, status, payload, *, content_type="application/json", headers=None):
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/erp/v1/health":
            if self.state.healthy:
                return self._reply(200, b"ok", content_type="text/plain")
            return self._reply(503, b"down", content_type="text/plain")
        if self.path == "/_mock/requests":
            with self.state.lock:
                return self._reply(200, list(self.state.requests))
        return self._reply(404, {"ok": False, "error": "not found"})

    def do_POST(self):
        body = self._body()
        if self.path == "/erp/v1/jobs/update":
            return self._update(body)
        if self.path.startswith("/_mock/"):
            return self._control(self.path[len("/_mock/") :], body)
        return self._reply(404, {"ok": False, "error": "not found"})

    def _update(self, body: bytes):
        received_at = time.time()
        signature = self.headers.get("X-Signature", "")
        verified = None
        if self.state.secrets:
            verified = any(hmac.compare_digest(_sign(s, body), signature) for s in self.state.secrets)
        key = self.headers.get("Idempotency-Key", "")
        with self.state.lock:
            duplicate = key in self.state.seen_keys
        plan = self.state.next_plan()
        status, extra_headers = 200, {}
        if plan:
            time.sleep(plan.get("delay_ms", 0) / 1000)
            status = plan.get("status") or 200
            if plan.get("retry_after") is not None:
                extra_headers["Retry-After"] = str(plan["retry_after"])
        elif self.state.failure_rate and random.random() < self.state.failure_rate:  # noqa: S311
            status = 503
        elif verified is False:
            status = 401
        elif duplicate and self.state.conflict_on_duplicate:
            status = 409
        if status == 200:
            with self.state.lock:
                self.state.seen_keys.add(key)
        self.state.record(
            {
                "received_at": received_at,
                "headers": {k: v for k, v in self.headers.items()},
                "body": body.decode("utf-8", errors="replace"),
                "signature_verified": verified,
                "duplicate": duplicate,
                "status": status,
            }
        )
        if status == 200:
            return self._reply(200, {"ok": True})
        return self._reply(status, {"ok": False, "error": f"mock answered {status}"}, headers=extra_headers)

    def _control(self, command: str, body: bytes):
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            return self._reply(400, {"ok": False, "error": "control body must be JSON"})
        if command == "plan":
            plan = {
                "status": data.get("status"),
                "count": int(data.get("count", 1)),
                "delay_ms": int(data.get("delay_ms", 0)),
                "retry_after": data.get("retry_after"),
            }
            with self.state.lock:
                self.state.plans.append(plan)
            return self._reply(200, {"ok": True, "plan": plan})
        if command == "health":
            self.state.healthy = bool(data.get("ok", True))
            return self._reply(200, {"ok": True})
        if command == "reset":
            self.state.reset()
            return self._reply(200, {"ok": True})
        return self._reply(404, {"ok": False, "error": f"unknown control command {command}"})


def make_server(host: str, port: int, state: MockState, *, verbose=False) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer((host, port), MockErpHandler)
    server.daemon_threads = True
    server.state = state
    server.verbose = verbose
    return server


def serve(host, port, state, *, verbose=False, out=sys.stdout):
    server = make_server(host, port, state, verbose=verbose)
    out.write(f"mock ERP listening on http://{host}:{server.server_address[1]}\n")
    out.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--host", default=os.environ.get("MOCK_ERP_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("MOCK_ERP_PORT", "8081")))
    parser.add_argument(
        "--secret",
        action="append",
        default=None,
        help="verify X-Signature with this secret (repeat for a key rotation); default MOCK_ERP_SECRETS, "
        "else KEYRING_CURRENT/KEYRING_NEXT/ERP_SHARED_SECRET; none: signatures are recorded, not checked",
    )
    parser.add_argument("--log", default=os.environ.get("MOCK_ERP_LOG", ""), help="append requests to this JSONL file")
    parser.add_argument(
        "--failure-rate",
        type=float,
        default=float(os.environ.get("MOCK_FAILURE_RATE", "0") or 0),
        help="share of updates answered 503 at random (MOCK_FAILURE_RATE)",
    )
    parser.add_argument("--conflict-on-duplicate", action="store_true", help="answer 409 to a repeated Idempotency-Key")
    parser.add_argument("--verbose", action="store_true")
    return parser


def secrets_from(options) -> list[str]:
    if options.secret:
        return options.secret
    listed = [s.strip() for s in os.environ.get("MOCK_ERP_SECRETS", "").split(",") if s.strip()]
    return listed or [
        s for s in (os.environ.get(n, "") for n in ("KEYRING_CURRENT", "KEYRING_NEXT", "ERP_SHARED_SECRET")) if s
    ]


def main(argv=None):
    options = arguments(argparse.ArgumentParser(description=__doc__.splitlines()[0])).parse_args(argv)
    if not 0 <= options.failure_rate <= 1:
        sys.exit("--failure-rate (MOCK_FAILURE_RATE) must be between 0 and 1")
    state = MockState(
        secrets=secrets_from(options),
        failure_rate=options.failure_rate,
        log_path=options.log or None,
        conflict_on_duplicate=options.conflict_on_duplicate,
    )
    serve(options.host, options.port, state, verbose=options.verbose)


if __name__ == "__main__":
    main()
