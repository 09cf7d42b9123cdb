"""Structured JSON log lines that carry the request id and trace id of the request that wrote them."""

import json
import logging
from datetime import UTC, datetime

from . import masking, request_context


class RequestContextFilter(logging.Filter):
    def filter(self, record):
        context = request_context.current()
        request_id, client_ip, trace_id = context.request_id, context.client_ip, context.trace_id
        # Django logs a response's 4xx/5xx ("Not Found: ...") after the middleware chain has returned,
        # when the context is gone; it passes the request along, which still carries the id.
        request = getattr(record, "request", None)
        if request_id == request_context.RequestContext.request_id and hasattr(request, "request_id"):
            request_id, client_ip = request.request_id, getattr(request, "client_ip", "")
            trace_id = getattr(request, "trace_id", "")
        record.request_id = request_id
        record.client_ip = client_ip
        record.trace_id = trace_id
        return True


def _masking() -> tuple[bool, bool]:
    """(mask personal data, mask client IPs) from LOG_MASK_PII / SIEM_MASK_IPS; on, off before settings load."""
    try:
        from django.conf import settings

        return getattr(settings, "LOG_MASK_PII", True), getattr(settings, "SIEM_MASK_IPS", False)
    except Exception:  # settings not configured (a script logging before Django starts): mask anyway
        return True, False


class JsonFormatter(logging.Formatter):
    """One JSON object per line; the message and traceback go through apps.core.masking (on by default)."""

    def format(self, record):
        entry = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "req_id": getattr(record, "request_id", "-"),
            # W3C trace id (32 hex) of the request, "-" outside one (issue 15: every line, so traces join logs).
            "trace_id": getattr(record, "trace_id", "") or "-",
            "msg": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        masked, mask_ips = _masking()
        if masked:
            entry["msg"] = masking.mask_text(entry["msg"], mask_ips=mask_ips)
            if "exc" in entry:
                entry["exc"] = masking.mask_text(entry["exc"], mask_ips=mask_ips)
        return json.dumps(entry, ensure_ascii=False, default=str)
