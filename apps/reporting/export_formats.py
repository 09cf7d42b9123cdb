"""Writers for exported report files: CSV, XLSX and JSON, each streaming rows to a binary file.

Every file states its context (filters, time zone, data-as-of time, who asked, generator version)
and its row count, so a file found later still says what it is and that nothing was cut off.
"""

import csv
import datetime as dt
import io
import json

from django.utils.translation import gettext as _

from . import constants
from .selectors import REPORT_TZ


def _local(value):
    return value.astimezone(REPORT_TZ) if isinstance(value, dt.datetime) else value


def _plain(row):
    """A values_list row as JSON-ready values: the UUID as text, times in Istanbul with their offset."""
    public_id, *rest = row
    return [str(public_id), *((_local(v).isoformat() if isinstance(v, dt.datetime) else v) for v in rest)]


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


def write_csv(rows, out, meta: dict, progress) -> int:
    """UTF-8 CSV: `#` context lines, the Turkish column header, the rows, and a closing `#` row-count line."""
    text = io.TextIOWrapper(out, encoding="utf-8", newline="")
    writer = csv.writer(text)
    for label, value in context_lines(meta):
        writer.writerow([f"# {label}", value])
    writer.writerow([str(header) for _key, header in constants.EXPORT_COLUMNS])
    count = 0
    for row in rows:
        writer.writerow(_plain(row))
        count += 1
        progress(count)
    writer.writerow([f"# {_('Row count')}", count])
    text.flush()
    text.detach()
    return count


# Cell number formats: thousands-grouped integers and day-first dates, the Turkish conventions.
XLSX_INT_FORMAT = "#,##0"
XLSX_DATETIME_FORMAT = "dd.mm.yyyy hh:mm:ss"


def write_xlsx(rows, out, meta: dict, progress) -> int:
    """XLSX with typed cells (numbers, dates) on the data sheet and the context on a second sheet."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(_("Jobs"))
    info = workbook.create_sheet(_("Export info"))
    sheet.append([str(header) for _key, header in constants.EXPORT_COLUMNS])
    count = 0
    for row in rows:
        cells = []
        for key, value in zip((k for k, _h in constants.EXPORT_COLUMNS), row, strict=True):
            if key == "id":
                value = str(value)
            elif isinstance(value, dt.datetime):
                # Excel has no time zones: write the Istanbul wall-clock time, which the info sheet names.
                value = _local(value).replace(tzinfo=None)
            cell = WriteOnlyCell(sheet, value=value)
            if isinstance(value, dt.datetime):
                cell.number_format = XLSX_DATETIME_FORMAT
            elif isinstance(value, int):
                cell.number_format = XLSX_INT_FORMAT
            cells.append(cell)
        sheet.append(cells)
        count += 1
        progress(count)
    for label, value in context_lines(meta):
        info.append([str(label), str(value)])
    info.append([_("Row count"), count])
    workbook.save(out)
    return count


def write_json(rows, out, meta: dict, progress) -> int:
    """One JSON document {meta, columns, rows, row_count} written piece by piece (schema: report-export)."""
    keys = [k for k, _h in constants.EXPORT_COLUMNS]
    head = {"meta": meta, "columns": [{"key": k, "title": str(h)} for k, h in constants.EXPORT_COLUMNS]}
    out.write(json.dumps(head, ensure_ascii=False)[:-1].encode())
    out.write(b', "rows": [')
    count = 0
    for row in rows:
        item = json.dumps(dict(zip(keys, _plain(row), strict=True)), ensure_ascii=False)
        out.write(((",\n" if count else "\n") + item).encode())
        count += 1
        progress(count)
    out.write(f'\n], "row_count": {count}}}\n'.encode())
    return count


WRITERS = {"csv": write_csv, "xlsx": write_xlsx, "json": write_json}
CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "json": "application/json",
}
