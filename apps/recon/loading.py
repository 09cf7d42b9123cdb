"""Reading an ERP export (CSV or XLSX), validating every row and streaming it into the staging table.

One pass: each row is parsed, checked and written to `recon_staged_row` (COPY on PostgreSQL, batched
inserts elsewhere) inside one transaction; any error rolls the whole file back, so a bad file never
half-loads. The first MAX_REPORTED_ERRORS errors are kept with their row and column, then only counted.
"""

import codecs
import contextlib
import csv
import datetime as dt
import functools
import hashlib
import io
import zoneinfo
from dataclasses import dataclass, field

from django.db import connection
from django.utils.translation import gettext as _

from .constants import FIELDS, LOAD_BATCH, MAX_REPORTED_ERRORS, PROGRESS_EVERY, TIME_FIELDS

_DELIMITERS = (",", ";", "\t", "|")
_NUMBER_FIELDS = ("progress",)
_STAGED_COLUMNS = (
    "file_id",
    "row_number",
    "key",
    "external_id",
    "machine",
    "model_type",
    "planned_start",
    "status",
    "progress",
    "started_at",
    "finished_at",
)
_TIME_FORMATS = ("%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%d.%m.%Y", "%d/%m/%Y %H:%M", "%d/%m/%Y")


class FileRejected(Exception):
    """The file did not validate; `outcome` holds its errors. Raised inside the staging transaction."""

    def __init__(self, outcome):
        super().__init__(f"{outcome.error_count} errors")
        self.outcome = outcome


@dataclass
class Outcome:
    """What reading a file found: how it was read, its rows, errors and formula cells."""

    file_format: str = ""
    encoding: str = ""
    delimiter: str = ""
    rows: int = 0
    columns: list = field(default_factory=list)
    errors: list = field(default_factory=list)
    error_count: int = 0
    formula_cells: list = field(default_factory=list)
    formula_count: int = 0

    def error(self, row, column, header, message):
        self.error_count += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append({"row": row, "column": column, "header": header, "message": str(message)})


def sha256_of(stream) -> tuple[str, int]:
    """The stream's sha256 and size, read in chunks; the stream is left at its start."""
    digest, size = hashlib.sha256(), 0
    stream.seek(0)
    for chunk in iter(lambda: stream.read(1 << 20), b""):
        digest.update(chunk)
        size += len(chunk)
    stream.seek(0)
    return digest.hexdigest(), size


def column_letter(index: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA: the column as a spreadsheet names it."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def detect_encoding(sample: bytes) -> str:
    """utf-8-sig with a BOM, utf-8 when the sample decodes, else cp1254 (Turkish Windows, latin-5's superset)."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
    except UnicodeDecodeError:
        return "cp1254"
    return "utf-8"


def detect_delimiter(first_line: str) -> str:
    counts = {d: first_line.count(d) for d in _DELIMITERS}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def is_xlsx(name: str, head: bytes) -> bool:
    return name.lower().endswith(".xlsx") or head.startswith(b"PK\x03\x04")


def _csv_rows(stream, outcome, *, encoding, delimiter):
    sample = stream.read(65536)
    stream.seek(0)
    outcome.file_format = "csv"
    outcome.encoding = encoding or detect_encoding(sample)
    text = io.TextIOWrapper(stream, encoding=outcome.encoding, newline="", errors="strict")
    if not delimiter:
        first = sample.decode(outcome.encoding, errors="replace").lstrip("\ufeff").splitlines()
        delimiter = detect_delimiter(first[0] if first else "")
    outcome.delimiter = delimiter
    try:
        for number, row in enumerate(csv.reader(text, delimiter=delimiter), start=1):
            yield number, row, None
    except UnicodeDecodeError:
        outcome.error(
            outcome.rows + 2,
            "-",
            "",
            _("The file is not valid %(encoding)s from here on; state its encoding (e.g. cp1254).")
            % {"encoding": outcome.encoding},
        )
    finally:
        text.detach()


def _xlsx_rows(stream, outcome):
    from openpyxl import load_workbook

    outcome.file_format = "xlsx"
    # data_only=False: a formula cell reads back as its text; nothing is ever evaluated.
    book = load_workbook(stream, read_only=True, data_only=False)
    try:
        sheet = book.worksheets[0]
        for number, row in enumerate(sheet.iter_rows(), start=1):
            yield number, [cell.value for cell in row], [getattr(cell, "data_type", "") == "f" for cell in row]
    finally:
        book.close()


def _text(value) -> str:
    if value.__class__ is str:
        return value.strip()
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _text64(value) -> str:
    text = value.strip() if value.__class__ is str else _text(value)
    if len(text) > 64:
        raise ValueError(text)
    return text


# Where each field goes in a staged row (see _STAGED_COLUMNS).
_SLOTS = {name: _STAGED_COLUMNS.index(name) for name in FIELDS}


def _epoch(value, tz) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, dt.date):
        moment = dt.datetime(value.year, value.month, value.day)
    else:
        text = str(value).strip()
        if not text:
            return None
        moment = None
        try:
            moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            for fmt in _TIME_FORMATS:
                try:
                    moment = dt.datetime.strptime(text, fmt)
                    break
                except ValueError:
                    continue
        if moment is None:
            raise ValueError(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return int(moment.timestamp())


def _number(value) -> float | None:
    if value.__class__ is str and value.isdigit():
        number = float(value)  # the common case, "45": no further checks needed but the range
        if number > 100:
            raise ValueError(value)
        return number
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, int | float):
        number = float(value)
    else:
        text = str(value).strip().replace(" ", "")
        if not text:
            return None
        if "," in text and "." not in text:
            text = text.replace(",", ".")  # Turkish decimal comma: 45,5
        number = float(text)
    if not 0 <= number <= 100:
        raise ValueError(value)
    return number


class _Writer:
    """Streams staged rows: COPY on PostgreSQL, executemany batches elsewhere. Call inside the transaction."""

    def __init__(self):
        self.cursor = connection.cursor()
        self.copy = None
        self.batch = []
        if connection.vendor == "postgresql":
            columns = ", ".join(_STAGED_COLUMNS)
            self._copy_context = self.cursor.cursor.copy(f"COPY recon_staged_row ({columns}) FROM STDIN")
            self.copy = self._copy_context.__enter__()
        else:
            placeholders = ", ".join(["%s"] * len(_STAGED_COLUMNS))
            self.sql = f"INSERT INTO recon_staged_row ({', '.join(_STAGED_COLUMNS)}) VALUES ({placeholders})"  # noqa: S608

    def write(self, row):
        if self.copy is not None:
            self.copy.write_row(row)
            return
        self.batch.append(row)
        if len(self.batch) >= LOAD_BATCH:
            self.flush()

    def flush(self):
        if self.batch:
            self.cursor.executemany(self.sql, self.batch)
            self.batch = []

    def close(self, *, failed=False):
        if self.copy is not None:
            self.copy = None
            if failed:
                # Ending COPY with an error aborts it; the transaction is rolled back by the caller anyway.
                error = FileRejected(Outcome())
                # psycopg re-raises the abort; the caller's rollback follows.
                with contextlib.suppress(Exception):
                    self._copy_context.__exit__(FileRejected, error, None)
            else:
                self._copy_context.__exit__(None, None, None)
        elif not failed:
            self.flush()
        self.cursor.close()


def _header_fields(header, config, outcome):
    """Map the header's cells to our field names; report missing required columns on row 1."""
    renames = {str(k).strip().casefold(): v for k, v in (config.get("columns") or {}).items()}
    positions = {}
    for index, cell in enumerate(header):
        name = _text(cell).lstrip("\ufeff").casefold()
        name = renames.get(name, name)
        if name in FIELDS and name not in positions:
            positions[name] = index
    outcome.columns = [f for f in FIELDS if f in positions]
    required = list(config.get("required_columns") or [])
    key = config.get("key") or {}
    composite = list(key.get("composite") or ["machine", "model_type", "planned_start"])
    if key.get("prefer", "external_id") != "external_id" or "external_id" not in positions:
        required += composite
    for name in dict.fromkeys(required):
        if name not in positions:
            outcome.error(1, "-", name, _("The column %(column)s is missing.") % {"column": name})
    return positions


def load(stream, *, file_id, name, config, encoding="", delimiter="", on_progress=None) -> Outcome:
    """Validate the file and stage its rows for `file_id`; raises FileRejected (call inside a transaction)."""
    outcome = Outcome()
    head = stream.read(8)
    stream.seek(0)
    if not head:
        outcome.file_format = "xlsx" if name.lower().endswith(".xlsx") else "csv"
        outcome.error(1, "-", "", _("The file is empty."))
        raise FileRejected(outcome)
    rows = (
        _xlsx_rows(stream, outcome)
        if is_xlsx(name, head)
        else _csv_rows(stream, outcome, encoding=encoding, delimiter=delimiter)
    )
    tz = zoneinfo.ZoneInfo(config.get("time_zone") or "UTC")
    key_config = config.get("key") or {}
    prefer_external = key_config.get("prefer", "external_id") == "external_id"
    composite = list(key_config.get("composite") or ["machine", "model_type", "planned_start"])
    # Exports repeat their timestamps (shift starts, planned slots): parse each distinct text once.
    epoch_of_text = functools.lru_cache(maxsize=65536)(lambda text: _epoch(text, tz))

    def to_epoch(value):
        return epoch_of_text(value) if value.__class__ is str else _epoch(value, tz)

    converters = {2: to_epoch, 1: _number, 0: _text64}
    writer = None
    positions = None
    plan = []
    has_status = False
    composite_slots = [(_SLOTS[p], p in TIME_FIELDS) for p in composite]
    try:
        for number, values, formulas in rows:
            if positions is None:
                positions = _header_fields(values, config, outcome)
                if outcome.error_count:
                    break
                plan = []
                for name_, index in positions.items():
                    kind = 2 if name_ in TIME_FIELDS else 1 if name_ in _NUMBER_FIELDS else 0
                    plan.append((_SLOTS[name_], index, column_letter(index), name_, kind, converters[kind]))
                has_status = "status" in positions
                writer = _Writer()
                continue
            if not any(values):
                continue  # blank lines (trailing CRLFs, empty sheet rows) are no rows
            width = len(values)
            # file, row, key, external_id, machine, model_type, planned_start, status, progress, started, finished
            out = [file_id, number, None, "", "", "", None, "", None, None, None]
            for slot, index, letter, name_, kind, convert in plan:
                value = values[index] if index < width else None
                if formulas is not None and index < width and formulas[index]:
                    outcome.formula_count += 1
                    if len(outcome.formula_cells) < MAX_REPORTED_ERRORS:
                        outcome.formula_cells.append({"row": number, "column": letter, "formula": str(value)})
                    if kind:
                        outcome.error(
                            number, letter, name_, _("A formula is not a value: %(formula)s") % {"formula": value}
                        )
                        continue
                try:
                    out[slot] = convert(value)
                except (ValueError, TypeError, OverflowError):
                    outcome.error(
                        number,
                        letter,
                        name_,
                        _("%(value)s is not a valid %(field)s.") % {"value": _text(value)[:80], "field": name_},
                    )
            if has_status and out[7] == "":
                outcome.error(number, column_letter(positions["status"]), "status", _("The status is empty."))
            external_id = out[3]
            if prefer_external and external_id:
                out[2] = "e|" + external_id
            elif all(out[slot] not in (None, "") for slot, _time in composite_slots):
                out[2] = "c|" + "|".join(
                    str(out[slot] // 60) if is_time else str(out[slot]) for slot, is_time in composite_slots
                )
            else:
                outcome.error(number, "-", "key", _("The row has no key: no ERP id and an incomplete composite key."))
            outcome.rows += 1
            if outcome.error_count == 0:
                writer.write(out)
            if on_progress and outcome.rows % PROGRESS_EVERY == 0:
                on_progress(outcome.rows)
    except FileRejected:
        raise
    except Exception as exc:  # a corrupt XLSX, a CSV field over the size limit: the file is bad, not the code
        outcome.error(outcome.rows + 2, "-", "", _("The file could not be read: %(error)s") % {"error": exc})
    if positions is None and not outcome.error_count:
        outcome.error(1, "-", "", _("The file is empty."))
    elif positions is not None and outcome.rows == 0 and not outcome.error_count:
        outcome.error(2, "-", "", _("The file has a header but no rows."))
    if writer is not None:
        writer.close(failed=bool(outcome.error_count))
    if outcome.error_count:
        raise FileRejected(outcome)
    if on_progress:
        on_progress(outcome.rows)
    return outcome
