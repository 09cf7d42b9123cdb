"""Reporting constants: limits that are not settings, and the exported columns."""

import datetime as dt

from django.utils.translation import gettext_lazy as _

# Excel's sheet has 1,048,576 rows; one is the column header.
XLSX_MAX_ROWS = 1_048_575
# Rows fetched per round trip from the server-side cursor while exporting.
EXPORT_CHUNK_ROWS = 5_000
# Bumped whenever the layout of an exported file changes; every file states it.
EXPORT_GENERATOR_VERSION = "tezgah-report-export/1"
# The detail API's page size when `limit` is not given, and its cap.
DETAIL_DEFAULT_LIMIT = 50
DETAIL_MAX_LIMIT = 500
# The highest page number the detail report takes: page x limit stays a small OFFSET (page=10**30 was an
# OFFSET beyond bigint, a 500 on both the API and the panel; issue 11).
DETAIL_MAX_PAGE = 1_000_000
# The calendar days a report filter takes: a day at the edge of Python's range overflows when converted
# from Istanbul to UTC (date_from=0001-01-01 was a 500, found by the fuzz run at 100 examples).
MIN_FILTER_DATE = dt.date(1900, 1, 1)
MAX_FILTER_DATE = dt.date(9999, 12, 30)
# A job id (bigint): the largest `as_of` snapshot there can be.
MAX_JOB_ID = 2**63 - 1

# (key in JSON, Turkish column header) for every exported and detail column, in order.
EXPORT_COLUMNS = [
    ("id", _("Job id")),
    ("external_id", _("ERP id")),
    ("tenant", _("Tenant")),
    ("model_type", _("Model type")),
    ("machine", _("Machine")),
    ("post", _("Post")),
    ("status", _("Status")),
    ("progress", _("Progress")),
    ("created_at", _("Created at")),
    ("started_at", _("Started at")),
    ("finished_at", _("Finished at")),
    ("duration_ms", _("Duration (ms)")),
]

# Columns of the spreadsheet exports (CSV, XLSX), written for people: the tenant's name and the status's
# Turkish label, each beside its code (which JSON exports and the API carry alone).
SPREADSHEET_COLUMNS = [
    ("id", _("Job id")),
    ("external_id", _("ERP id")),
    ("tenant_name", _("Tenant")),
    ("tenant", _("Tenant code")),
    ("model_type", _("Model type")),
    ("machine", _("Machine")),
    ("post", _("Post")),
    ("status_label", _("Status")),
    ("status", _("Status code")),
    ("progress", _("Progress")),
    ("created_at", _("Created at")),
    ("started_at", _("Started at")),
    ("finished_at", _("Finished at")),
    ("duration_ms", _("Duration (ms)")),
]

# Alert channel circuit breaker: this many failed deliveries in a row open it for this many minutes;
# then one attempt is let through (half-open), and a success closes it.
ALERT_BREAKER_FAILURES = 3
ALERT_BREAKER_COOLDOWN_MINUTES = 5
