"""The one formula-safe writer for every spreadsheet the portal produces (CSV and XLSX).

Admin exports (django-import-export), report exports, and every later spreadsheet (recon break lists,
evidence) write their cells through this module, so a cell an operator controls (an ERP id, a model type
code, a machine name) never runs as a formula in Excel or LibreOffice (CSV injection).

- CSV has no cell types: a text cell that a spreadsheet would read as a formula (starting with `=`,
  `+`, `-`, `@`, tab or CR) is prefixed with a single quote, OWASP's advice. django-import-export only
  strips a leading "=" (django-import-export#1543), so its formats are wrapped here too.
- XLSX has cell types: text is always written as a text cell (openpyxl would store any string starting
  with "=" as a live formula), exactly as it is, with Excel's "quote prefix" style on cells that would
  read as a formula when edited. Characters XLSX cannot hold become U+FFFD instead of failing the file.
"""

import csv

from import_export.formats.base_formats import CSV, XLSX
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def reads_as_formula(value) -> bool:
    """A text cell that Excel or LibreOffice would evaluate (plain numbers like "-5" are numbers, not formulas)."""
    return isinstance(value, str) and value.startswith(_TRIGGERS) and not _is_number(value)


def neutralise(value):
    """A CSV cell made safe: a text that would read as a formula gets a leading quote; anything else is kept."""
    if reads_as_formula(value):
        return "'" + value
    return value


class FormulaSafeCSVWriter:
    """`csv.writer` whose every cell, header and comment line included, goes through `neutralise`."""

    def __init__(self, text_stream, **fmtparams):
        self._writer = csv.writer(text_stream, **fmtparams)

    def writerow(self, row):
        return self._writer.writerow([neutralise(cell) for cell in row])

    def writerows(self, rows):
        for row in rows:
            self.writerow(row)


def xlsx_cell(sheet, value, *, number_format: str | None = None) -> WriteOnlyCell:
    """A write-only openpyxl cell that is never a formula: text stays text, numbers and dates keep their type."""
    if isinstance(value, str):
        value = ILLEGAL_CHARACTERS_RE.sub("\ufffd", value)
    cell = WriteOnlyCell(sheet, value=value)
    if isinstance(value, str):
        # openpyxl types every string that starts with "=" as a formula; a cell we write is data.
        cell.data_type = "s"
        if reads_as_formula(value):
            cell.quotePrefix = True
    if number_format:
        cell.number_format = number_format
    return cell


def _neutralised(dataset):
    safe = dataset.__class__(headers=dataset.headers, title=dataset.title)
    for row in dataset:
        safe.append([neutralise(cell) for cell in row])
    return safe


class SafeCSV(CSV):
    """django-import-export's CSV with every formula trigger quoted."""

    def export_data(self, dataset, **kwargs):
        return super().export_data(_neutralised(dataset), **kwargs)


class SafeXLSX(XLSX):
    """django-import-export's XLSX written through `xlsx_cell`: text cells, never formulas."""

    def export_data(self, dataset, **kwargs):
        import io

        from openpyxl import Workbook

        workbook = Workbook(write_only=True)
        sheet = workbook.create_sheet((dataset.title or "Sheet1")[:31])
        if dataset.headers:
            sheet.append([xlsx_cell(sheet, str(h)) for h in dataset.headers])
        for row in dataset:
            sheet.append([xlsx_cell(sheet, cell) for cell in row])
        out = io.BytesIO()
        workbook.save(out)
        return out.getvalue()
