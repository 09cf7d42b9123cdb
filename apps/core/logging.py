"""Structured JSON log lines that carry the request id of the request that wrote them."""

import json
import logging
from datetime import UTC, datetime

from . import request_context


class RequestContextFilter(logging.Filter):
    def filter(self, record):
        context = request_context.current()
        record.request_id = context.request_id
        record.client_ip = context.client_ip
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record):
        entry = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "req_id": getattr(record, "request_id", "-"),
            "msg": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)
