"""The events reporting emits, with their schemas; registered in ReportingConfig.ready()."""

from apps.events.registry import register_event_type

REPORT_EXPORT_REQUESTED = "report.export.requested"
REPORT_EXPORT_REQUESTED_V1 = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["export_id", "format", "requested_by", "tenant_id", "rows_expected", "requested_at"],
    "additionalProperties": False,
    "properties": {
        "export_id": {"type": "string", "format": "uuid"},
        "format": {"type": "string"},
        "requested_by": {"type": ["integer", "null"]},
        # The one tenant the export is of: the filter's, or the requester's only tenant; null when it spans several.
        "tenant_id": {"type": ["integer", "null"]},
        "rows_expected": {"type": "integer", "minimum": 0},
        "requested_at": {"type": "string", "format": "date-time"},
    },
}


def register():
    register_event_type(REPORT_EXPORT_REQUESTED, 1, REPORT_EXPORT_REQUESTED_V1)
