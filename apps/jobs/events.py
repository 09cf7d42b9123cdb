"""The events a job emits, with their schemas; registered in JobsConfig.ready()."""

from apps.events.registry import register_event_type

JOB_STATUS_CHANGED = "job.status.changed"
JOB_STATUS_CHANGED_V1 = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["job_id", "tenant_id", "from_status", "status", "progress", "updated_at", "seq", "source"],
    "additionalProperties": False,
    "properties": {
        "job_id": {"type": "string", "format": "uuid"},
        "external_id": {"type": ["string", "null"]},
        "tenant_id": {"type": "integer"},
        "from_status": {"enum": ["queued", "running", "paused", "succeeded", "failed", "cancelled"]},
        "status": {"enum": ["queued", "running", "paused", "succeeded", "failed", "cancelled"]},
        "progress": {"type": "integer", "minimum": 0, "maximum": 100},
        "updated_at": {"type": "string", "format": "date-time"},
        "seq": {"type": "integer", "minimum": 1},
        "source": {"type": "string"},
        "actor_id": {"type": ["string", "null"]},
        "reason": {"type": "string"},
    },
}


def register():
    register_event_type(JOB_STATUS_CHANGED, 1, JOB_STATUS_CHANGED_V1)
