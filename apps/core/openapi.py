"""drf-spectacular postprocessing: the contract every endpoint shares, added once instead of per view.

- every 4xx a view can answer is `application/problem+json` with the Problem schema (and an example);
- every POST/PUT/PATCH takes an `Idempotency-Key` header, may answer 409 (key in use), 422 (key reused)
  and 423 (incident lock), and a replay carries `Idempotent-Replayed: true`;
- every response carries `X-Request-Id`.
So an endpoint another app adds is documented with these without doing anything.
"""

from drf_spectacular.openapi import AutoSchema

from .idempotency import KEY_PATTERN

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
PROBLEM_SCHEMA = {
    "type": "object",
    "description": "RFC 9457 problem details; `type` is stable (docs/api.md lists them).",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string", "example": "urn:tezgah:problem:not-found"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "request_id": {"type": "string"},
        "errors": {"description": "Field errors of a validation-error: field -> messages"},
    },
    "additionalProperties": True,
}
# Answers any endpoint may give: a bad header or body, no/invalid credentials, a missing capability,
# an unknown object, an unacceptable Accept or Content-Type, a schema error, a throttle.
_COMMON = {
    "400": "Malformed request (unparseable body, bad Idempotency-Key)",
    "401": "Not authenticated, or bad credentials",
    "403": "Not allowed (capability, MFA, address)",
    "404": "Not found, or not yours",
    "406": "No acceptable representation",
    "415": "Unsupported media type",
    "422": "Validation error; `errors` maps fields to messages",
    "429": "Rate-limited; see Retry-After",
}
_MUTATING = {
    "409": "Conflict: the state machine refuses it, or a request with this Idempotency-Key is in progress",
    "422": "Validation error, or the Idempotency-Key was used for a different request",
    "423": "The incident lock is on (read-only mode)",
}
_HEADER_REQUEST_ID = {
    "description": "The request id (echoed when the caller sent a well-formed one)",
    "schema": {"type": "string"},
}
_HEADER_REPLAYED = {
    "description": "`true` when this is the stored answer to an earlier request with the same Idempotency-Key",
    "schema": {"type": "string", "enum": ["true"]},
}
_IDEMPOTENCY_PARAMETER = {
    "in": "header",
    "name": "Idempotency-Key",
    "required": False,
    "description": "1-255 visible ASCII characters; a repeat with the same key returns the first answer",
    # Exactly what the server accepts (apps/core/idempotency.py: _valid_key).
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": KEY_PATTERN},
}


def _problem_content(code: str, description: str) -> dict:
    example = {
        "type": "urn:tezgah:problem:validation-error" if code == "422" else "urn:tezgah:problem:...",
        "title": description.split(";")[0],
        "status": int(code),
        "request_id": "3f6c2a0d9b7e4c1a8e5f",
    }
    return {"application/problem+json": {"schema": PROBLEM_REF, "examples": {"problem": {"value": example}}}}


def add_shared_contract(result, generator, request, public):
    result.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    for methods in result.get("paths", {}).values():
        for method, operation in methods.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            mutating = method in ("post", "put", "patch", "delete")
            responses = operation["responses"]
            for code, description in {**_COMMON, **(_MUTATING if mutating else {})}.items():
                responses.setdefault(code, {"description": description})
            for code, response in responses.items():
                # A 4xx the view described in words only is a problem; a 5xx (a health probe's 503) keeps
                # whatever the view documented.
                if code.isdigit() and 400 <= int(code) < 500 and "content" not in response:
                    response["description"] = response.get("description") or _COMMON.get(code, "")
                    response["content"] = _problem_content(code, response["description"] or "Error")
                headers = response.setdefault("headers", {})
                headers.setdefault("X-Request-Id", _HEADER_REQUEST_ID)
                if code == "429":
                    headers.setdefault("Retry-After", {"description": "Seconds to wait", "schema": {"type": "string"}})
                if mutating and code.startswith("2"):
                    headers.setdefault("Idempotent-Replayed", _HEADER_REPLAYED)
            if method in ("post", "put", "patch"):
                parameters = operation.setdefault("parameters", [])
                if not any(p.get("in") == "header" and p.get("name") == "Idempotency-Key" for p in parameters):
                    parameters.append(_IDEMPOTENCY_PARAMETER)
    return result


class QualifiedNameAutoSchema(AutoSchema):
    """Names a view's nested serializer after its view (`ErpReplayApi.InputSerializer` -> `ErpReplayApiInput`).

    The house style nests Input/Output serializers inside the API class that alone uses them, so plain class
    names collide across apps ("InputSerializer" everywhere) and drf-spectacular would merge their components.
    """

    def get_serializer_name(self, serializer, direction):
        parts = [p for p in type(serializer).__qualname__.split(".") if p != "<locals>"]
        if len(parts) == 1:
            return super().get_serializer_name(serializer, direction)
        name = "".join(parts)
        return name.removesuffix("Serializer") or name
