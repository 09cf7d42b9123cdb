"""Event types with their schema versions, and the subscribers of each; filled in AppConfig.ready()."""

from dataclasses import dataclass, field

import jsonschema


class UnknownEventType(LookupError):
    pass


class InvalidEventPayload(ValueError):
    pass


@dataclass(frozen=True)
class EventType:
    name: str
    version: int
    schema: dict
    _validator: jsonschema.Draft202012Validator = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        jsonschema.Draft202012Validator.check_schema(self.schema)
        object.__setattr__(self, "_validator", jsonschema.Draft202012Validator(self.schema))

    def validate(self, payload: dict) -> None:
        errors = sorted(self._validator.iter_errors(payload), key=lambda e: list(e.absolute_path))
        if errors:
            where = "/".join(str(p) for p in errors[0].absolute_path) or "(root)"
            raise InvalidEventPayload(f"{self.name} v{self.version}: {where}: {errors[0].message}")


_types: dict[tuple[str, int], EventType] = {}
_subscribers: dict[str, list] = {}


def register_event_type(name: str, version: int, schema: dict) -> EventType:
    """Declare `name` at `version`; the producer's app calls this in ready()."""
    event_type = EventType(name, version, schema)
    _types[(name, version)] = event_type
    return event_type


def event_type(name: str, version: int) -> EventType:
    try:
        return _types[(name, version)]
    except KeyError:
        raise UnknownEventType(f"{name} v{version} is not a registered event type") from None


def subscribe(name: str, handler, *, key: str, wants=None) -> None:
    """Call `handler(event)` (an OutboxEvent) for every event `name`; `key` names the subscriber (idempotent).

    `wants(payload) -> bool`, when given, says which events the handler acts on; it only ever sees those.
    An event no subscriber wants is recorded as handed on at once (events.services.publish).
    """
    handlers = _subscribers.setdefault(name, [])
    handlers[:] = [(k, h, w) for k, h, w in handlers if k != key]
    handlers.append((key, handler, wants))


def subscribers(name: str, payload: dict | None = None) -> list:
    """(key, handler) of the subscribers of `name`; with `payload`, only those that want it."""
    return [(k, h) for k, h, w in _subscribers.get(name, []) if payload is None or w is None or w(payload)]


def wanted(name: str, payload: dict) -> bool:
    """Whether some subscriber acts on this event."""
    return any(w is None or w(payload) for _k, _h, w in _subscribers.get(name, []))


def registered_types() -> list[EventType]:
    return sorted(_types.values(), key=lambda t: (t.name, t.version))
