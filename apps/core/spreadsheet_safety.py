"""The one formula-safe writer for every spreadsheet the portal produces (CSV and XLSX).

Admin exports (django-import-export), report exports, and every later spreadsheet (recon break lists,
evidence) write their cells through this module, so a cell an operator controls (an ERP id, a model type
code, a machine name) never runs as a formula in Excel or LibreOffice (CSV injection).

- CSV has no cell types: a text cell that a spreadsheet would read as a formula (starting with `=`,
  `+`, `-`, `@`, tab or CR) is prefixed with a single quote, OWASP's advice. django-import-export only
  strips a leading "=" (django-import-export#1543), so its formats are wrapped here too.
- XLSX has cell types: text is always written as a text cell (`write_string`, never XlsxWriter's `write`,
  which turns a string starting with "=" into a live formula), exactly as it is, with Excel's "quote prefix"
  style on cells that would read as a formula when edited. Characters XLSX cannot hold become U+FFFD instead
  of failing the file. The workbook is XlsxWriter's constant-memory mode: each row goes to disk when the next
  one starts, so a million-row export holds one row (openpyxl's write-only mode does too, at a third of the
  rate: docs/benchmarks.md).
"""

import csv
import datetime as dt
import decimal

import xlsxwriter
from import_export.formats.base_formats import CSV, XLSX

# The control characters the XML inside an XLSX file cannot hold (openpyxl still reads the uploads).
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


class FormulaSafeWorkbook:
    """An XLSX workbook, written in constant memory, whose cells are data and never formulas.

    `out` is a path or a binary file object. Add sheets, append rows to them in order, then `close()`.
    """

    def __init__(self, out):
        self._book = xlsxwriter.Workbook(out, {"constant_memory": True, "strings_to_formulas": False})
        self._formats = {}

    def add_sheet(self, title: str) -> "FormulaSafeSheet":
        return FormulaSafeSheet(self, self._book.add_worksheet(title[:31]))

    def cell_format(self, number_format: str | None, quote_prefix: bool):
        key = (number_format, quote_prefix)
        if key not in self._formats:
            properties = {"num_format": number_format} if number_format else {}
            if quote_prefix:
                properties["quote_prefix"] = True
            self._formats[key] = self._book.add_format(properties) if properties else None
        return self._formats[key]

    def close(self) -> None:
        self._book.close()


class FormulaSafeSheet:
    """One sheet of a FormulaSafeWorkbook: text stays text, numbers and dates keep their type."""

    def __init__(self, workbook: FormulaSafeWorkbook, worksheet):
        self._workbook = workbook
        self._sheet = worksheet
        self._row = 0

    def append(self, values, number_formats=None) -> None:
        """Write one row; `number_formats[i]` (optional) is cell i's Excel number format."""
        formats = number_formats or ()
        for column, value in enumerate(values):
            number_format = formats[column] if column < len(formats) else None
            self._write(column, value, number_format)
        self._row += 1

    def _write(self, column: int, value, number_format: str | None) -> None:
        sheet, row, cell_format = self._sheet, self._row, self._workbook.cell_format
        if value is None:
            return
        if isinstance(value, bool):
            sheet.write_boolean(row, column, value, cell_format(number_format, False))
        elif isinstance(value, (int, float, decimal.Decimal)):
            sheet.write_number(row, column, value, cell_format(number_format, False))
        elif isinstance(value, (dt.datetime, dt.date)):
            sheet.write_datetime(row, column, value, cell_format(number_format, False))
        else:
            text = ILLEGAL_CHARACTERS_RE.sub("\ufffd", str(value))
            sheet.write_string(row, column, text, cell_format(number_format, reads_as_formula(text)))


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
    """django-import-export's XLSX written through `FormulaSafeWorkbook`: text cells, never formulas."""

    def export_data(self, dataset, **kwargs):
        import io

        out = io.BytesIO()
        workbook = FormulaSafeWorkbook(out)
        sheet = workbook.add_sheet(dataset.title or "Sheet1")
        if dataset.headers:
            sheet.append([str(h) for h in dataset.headers])
        for row in dataset:
            sheet.append(row)
        workbook.close()
        return out.getvalue()
