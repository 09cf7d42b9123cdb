"""Writers for exported report files: CSV (two dialects), XLSX and JSON, each streaming rows to a binary file.

Every file states its context (filters, time zone, data-as-of time, who asked, generator version)
and its row count, so a file found later still says what it is and that nothing was cut off.

Spreadsheets (CSV, XLSX) are written for people: the status as its Turkish label beside its code, the
tenant's name beside its code, exact durations in ms. Every cell goes through the one formula-safe
writer (`apps.core.spreadsheet_safety`). JSON is written for programs: codes only (schema: report-export).
"""

import datetime as dt
import io
import json
from dataclasses import dataclass
from decimal import Decimal

from django.utils.translation import gettext as _

from apps.core.spreadsheet_safety import FormulaSafeCSVWriter, FormulaSafeWorkbook
from apps.jobs.models import JobStatus

from . import constants
from .selectors import REPORT_TZ


def _local(value):
    return value.astimezone(REPORT_TZ) if isinstance(value, dt.datetime) else value


def _plain(row):
    """An export row as JSON-ready values in EXPORT_COLUMNS order: the UUID as text, Istanbul times with offset."""
    public_id, *rest = row[: len(constants.EXPORT_COLUMNS)]
    return [str(public_id), *((_local(v).isoformat() if isinstance(v, dt.datetime) else v) for v in rest)]


def _spreadsheet_row(row, status_labels: dict) -> list:
    """An export row (selectors.EXPORT_ROW_FIELDS) in SPREADSHEET_COLUMNS order, with the Turkish labels added."""
    public_id, external_id, tenant, model_type, machine, post, status, progress, created, started, finished = row[:11]
    duration_ms, tenant_name = row[11], row[12]
    return [
        str(public_id),
        external_id,
        tenant_name,
        tenant,
        model_type,
        machine,
        post,
        status_labels.get(status, status),
        status,
        progress,
        created,
        started,
        finished,
        duration_ms,
    ]


def _status_labels() -> dict:
    # Read under the writer's translation.override("tr"): the labels are Turkish whoever runs the worker.
    return {code: str(label) for code, label in JobStatus.choices}


def context_lines(meta: dict) -> list[tuple[str, str]]:
    """The header block: (Turkish label, value) pairs describing the export."""
    return [
        (_("Report"), _("Tezgah job report")),
        (_("Export id"), meta["export_id"]),
        (_("Filters"), json.dumps(meta["filters"], ensure_ascii=False, sort_keys=True)),
        (_("Time zone"), meta["time_zone"]),
        (_("Data as of"), meta["data_as_of"]),
        (_("Requested by"), meta["requested_by"]),
        (_("Generator version"), meta["generator_version"]),
    ]


@dataclass(frozen=True)
class CSVDialect:
    """How a CSV file is spelled: the encoding (BOM or not), separators, and how times and decimals read."""

    encoding: str
    delimiter: str
    decimal_comma: bool
    # strftime pattern for times (Istanbul wall clock), or None for ISO 8601 with the offset.
    time_format: str | None

    def cell(self, value):
        if isinstance(value, dt.datetime):
            local = _local(value)
            return local.strftime(self.time_format) if self.time_format else local.isoformat()
        if isinstance(value, float | Decimal) and self.decimal_comma:
            return str(value).replace(".", ",")
        return value


# RFC 4180: UTF-8 without a BOM, comma-separated, CRLF, ISO 8601 times; for programs and most tools.
RFC4180 = CSVDialect(encoding="utf-8", delimiter=",", decimal_comma=False, time_format=None)
# Excel with a Turkish locale: the BOM makes it read UTF-8 (ş, ğ, İ), ";" is its list separator, decimals
# take a comma, and day-first times without an offset are recognised as dates.
EXCEL_TR = CSVDialect(encoding="utf-8-sig", delimiter=";", decimal_comma=True, time_format="%d.%m.%Y %H:%M:%S")


def write_csv_head(out, meta: dict, dialect: CSVDialect) -> None:
    """The `#` context lines and the Turkish column header (the BOM first for the Excel dialect)."""
    text = io.TextIOWrapper(out, encoding=dialect.encoding, newline="")
    writer = FormulaSafeCSVWriter(text, delimiter=dialect.delimiter, lineterminator="\r\n")
    for label, value in context_lines(meta):
        writer.writerow([f"# {label}", value])
    writer.writerow([str(header) for _key, header in constants.SPREADSHEET_COLUMNS])
    text.flush()
    text.detach()


def write_csv_tail(out, count: int, dialect: CSVDialect) -> None:
    """The closing `#` row-count line (no second BOM)."""
    text = io.TextIOWrapper(out, encoding=dialect.encoding.removesuffix("-sig"), newline="")
    FormulaSafeCSVWriter(text, delimiter=dialect.delimiter, lineterminator="\r\n").writerow(
        [f"# {_('Row count')}", count]
    )
    text.flush()
    text.detach()


def _write_csv(rows, out, meta: dict, progress, dialect: CSVDialect) -> int:
    """CSV: `#` context lines, the Turkish column header, the rows, and a closing `#` row-count line."""
    write_csv_head(out, meta, dialect)
    text = io.TextIOWrapper(out, encoding=dialect.encoding.removesuffix("-sig"), newline="")
    writer = FormulaSafeCSVWriter(text, delimiter=dialect.delimiter, lineterminator="\r\n")
    labels = _status_labels()
    cell = dialect.cell
    count = 0
    for row in rows:
        writer.writerow([cell(v) for v in _spreadsheet_row(row, labels)])
        count += 1
        progress(count)
    text.flush()
    text.detach()
    write_csv_tail(out, count, dialect)
    return count


def write_csv(rows, out, meta: dict, progress) -> int:
    """RFC 4180 CSV (UTF-8, comma, ISO 8601 times with their offset)."""
    return _write_csv(rows, out, meta, progress, RFC4180)


def write_csv_excel(rows, out, meta: dict, progress) -> int:
    """CSV that Excel with a Turkish locale opens as it is (BOM, `;`, decimal comma, dd.mm.yyyy times)."""
    return _write_csv(rows, out, meta, progress, EXCEL_TR)


# Cell number formats: thousands-grouped integers and day-first dates, the Turkish conventions.
XLSX_INT_FORMAT = "#,##0"
XLSX_DATETIME_FORMAT = "dd.mm.yyyy hh:mm:ss"


def _xlsx_format(value):
    if isinstance(value, dt.datetime):
        return XLSX_DATETIME_FORMAT
    if isinstance(value, int) and not isinstance(value, bool):
        return XLSX_INT_FORMAT
    return None


def write_xlsx(rows, out, meta: dict, progress) -> int:
    """XLSX with typed cells (numbers, dates, text that is never a formula) and the context on a second sheet."""
    workbook = FormulaSafeWorkbook(out)
    sheet = workbook.add_sheet(str(_("Jobs")))
    info = workbook.add_sheet(str(_("Export info")))
    sheet.append([str(header) for _key, header in constants.SPREADSHEET_COLUMNS])
    labels = _status_labels()
    count = 0
    for row in rows:
        values = []
        for value in _spreadsheet_row(row, labels):
            if isinstance(value, dt.datetime):
                # Excel has no time zones: write the Istanbul wall-clock time, which the info sheet names.
                value = _local(value).replace(tzinfo=None)
            values.append(value)
        sheet.append(values, [_xlsx_format(value) for value in values])
        count += 1
        progress(count)
    for label, value in context_lines(meta):
        info.append([str(label), str(value)])
    info.append([str(_("Row count")), count])
    workbook.close()
    return count


def json_head(meta: dict) -> bytes:
    """The JSON document up to its first row."""
    head = {"meta": meta, "columns": [{"key": k, "title": str(h)} for k, h in constants.EXPORT_COLUMNS]}
    return json.dumps(head, ensure_ascii=False)[:-1].encode() + b', "rows": ['


def json_tail(count: int) -> bytes:
    return f'\n], "row_count": {count}}}\n'.encode()


def write_json(rows, out, meta: dict, progress) -> int:
    """One JSON document {meta, columns, rows, row_count} written piece by piece (schema: report-export)."""
    keys = [k for k, _h in constants.EXPORT_COLUMNS]
    out.write(json_head(meta))
    count = 0
    for row in rows:
        item = json.dumps(dict(zip(keys, _plain(row), strict=True)), ensure_ascii=False)
        out.write(((",\n" if count else "\n") + item).encode())
        count += 1
        progress(count)
    out.write(json_tail(count))
    return count


WRITERS = {"csv": write_csv, "csv_excel": write_csv_excel, "xlsx": write_xlsx, "json": write_json}
CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "csv_excel": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "json": "application/json",
}
FILE_EXTENSIONS = {"csv": "csv", "csv_excel": "csv", "xlsx": "xlsx", "json": "json"}
