"""Per-request values (request id, client IP, user) that logs and services read without a request object."""

import contextvars
import re
import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class RequestContext:
    request_id: str = "-"
    client_ip: str = ""
    user_id: int | None = None


# The default is a frozen dataclass, so sharing it between contexts is safe.
_current = contextvars.ContextVar("tezgah_request_context", default=RequestContext())  # noqa: B039

# A caller's id is echoed into logs and headers, so only a short, plain token is accepted.
_ACCEPTABLE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")


def new_request_id(candidate: str | None = None) -> str:
    """Return the caller's request id when it is well formed, otherwise a fresh one."""
    if candidate and _ACCEPTABLE_REQUEST_ID.match(candidate):
        return candidate
    return uuid.uuid4().hex


def current() -> RequestContext:
    return _current.get()


def activate(context: RequestContext) -> contextvars.Token:
    return _current.set(context)


def deactivate(token: contextvars.Token) -> None:
    _current.reset(token)
