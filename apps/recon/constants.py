"""Recon constants: the default config a new profile starts with, the file's fields, the age buckets."""

from django.utils.translation import gettext_lazy as _

# The fields an ERP export row may carry (after the config's column map renames its headers).
FIELDS = ("external_id", "machine", "model_type", "planned_start", "status", "progress", "started_at", "finished_at")
TIME_FIELDS = ("planned_start", "started_at", "finished_at")
# The fields compared with tolerances (status has its own break type).
COMPARED_FIELDS = ("progress", "started_at", "finished_at")

# What a new profile's first config version holds (issue 18: progress within 2 points, timestamps within
# 5 minutes, our own status codes accepted as the ERP's).
DEFAULT_CONFIG = {
    "key": {"prefer": "external_id", "composite": ["machine", "model_type", "planned_start"]},
    "columns": {},  # ERP header -> our field name, e.g. {"İş No": "external_id"}; headers are matched case-blind
    "required_columns": ["status", "progress"],
    "tolerances": {
        "progress": {"abs": 2, "rel": 0},
        "started_at": {"seconds": 300},
        "finished_at": {"seconds": 300},
    },
    "status_map": {},  # ERP status -> ours, e.g. {"TAMAMLANDI": "succeeded"}; our own codes always pass
    "time_zone": "Europe/Istanbul",  # naive timestamps in the file are read in this zone
    "drop_dirs": [],  # folders polled by beat; each must lie under one of ERP_DROP_DIRS
}

# Age buckets of an open break, by whole days since it was first seen: (label, lowest day, highest day).
AGE_BUCKETS = (("0-1", 0, 1), ("2-7", 2, 7), ("8-30", 8, 30), (">30", 31, None))
BUCKET_LABELS = {
    "0-1": _("0-1 days"),
    "2-7": _("2-7 days"),
    "8-30": _("8-30 days"),
    ">30": _("more than 30 days"),
}

MAX_REPORTED_ERRORS = 100
LOAD_BATCH = 5000
PROGRESS_EVERY = 10000

# The compared fields as the panel names them.
FIELD_LABELS = {
    "progress": _("progress"),
    "started_at": _("started at"),
    "finished_at": _("finished at"),
}
