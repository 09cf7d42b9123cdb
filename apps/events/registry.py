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


def subscribe(name: str, handler, *, key: str, wants=None, batch=None) -> None:
    """Call `handler(event)` (an OutboxEvent) for every event `name`; `key` names the subscriber (idempotent).

    `wants(payload) -> bool`, when given, says which events the handler acts on; it only ever sees those.
    An event no subscriber wants is recorded as handed on at once (events.services.publish).
    `batch(events)`, when given, is called instead of `handler` by the relay with every wanted event of a
    claimed batch at once, inside the relay's transaction (issue 13: one bulk write instead of one per event).
    """
    handlers = _subscribers.setdefault(name, [])
    handlers[:] = [entry for entry in handlers if entry[0] != key]
    handlers.append((key, handler, wants, batch))


def subscribers(name: str, payload: dict | None = None) -> list:
    """(key, handler) of the subscribers of `name`; with `payload`, only those that want it."""
    return [(k, h) for k, h, w, _b in _subscribers.get(name, []) if payload is None or w is None or w(payload)]


def batch_subscribers(name: str, payload: dict) -> list:
    """(key, handler, batch handler or None) of the subscribers of `name` that want `payload`."""
    return [(k, h, b) for k, h, w, b in _subscribers.get(name, []) if w is None or w(payload)]


def wanted(name: str, payload: dict) -> bool:
    """Whether some subscriber acts on this event."""
    return any(w is None or w(payload) for _k, _h, w, _b in _subscribers.get(name, []))


def registered_types() -> list[EventType]:
    return sorted(_types.values(), key=lambda t: (t.name, t.version))
