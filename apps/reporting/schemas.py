"""The JSON Schema that every JSON report export validates against (served at /reports/export/schema.json)."""

from . import constants

_NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}

EXPORT_JSON_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "urn:tezgah:schema:report-export:1",
    "title": "Tezgah report export",
    "type": "object",
    "required": ["meta", "columns", "rows", "row_count"],
    "additionalProperties": False,
    "properties": {
        "meta": {
            "type": "object",
            "required": [
                "export_id",
                "format",
                "filters",
                "time_zone",
                "data_as_of",
                "snapshot_job_id",
                "requested_by",
                "generator_version",
            ],
            "properties": {
                "export_id": {"type": "string", "format": "uuid"},
                "format": {"const": "json"},
                "filters": {"type": "object"},
                "time_zone": {"type": "string"},
                "data_as_of": {"type": "string", "format": "date-time"},
                "snapshot_job_id": {"type": "integer"},
                "requested_by": {"type": "string"},
                "generator_version": {"type": "string"},
            },
        },
        "columns": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["key", "title"],
                "properties": {"key": {"type": "string"}, "title": {"type": "string"}},
            },
        },
        "rows": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": [key for key, _title in constants.EXPORT_COLUMNS],
                "properties": {
                    "id": {"type": "string", "format": "uuid"},
                    "external_id": {"type": ["string", "null"]},
                    "tenant": {"type": "string"},
                    "model_type": {"type": "string"},
                    "machine": {"type": "string"},
                    "post": {"type": "string"},
                    "status": {"enum": ["queued", "running", "paused", "succeeded", "failed", "cancelled"]},
                    "progress": {"type": "integer", "minimum": 0, "maximum": 100},
                    "created_at": {"type": "string", "format": "date-time"},
                    "started_at": _NULLABLE_TIME,
                    "finished_at": _NULLABLE_TIME,
                    "duration_ms": {"type": ["integer", "null"], "minimum": 0},
                },
            },
        },
        "row_count": {"type": "integer", "minimum": 0},
    },
}
