"""Export rows written by PostgreSQL itself: `COPY (SELECT <finished line>) TO STDOUT`, at COPY's speed.

The Python writers (`export_formats`) convert every value, quote every cell and encode every row in
Python: about a tenth of COPY's rate (docs/benchmarks.md). Here PostgreSQL builds each finished line
(Istanbul times, Turkish status labels, formula-safe cells, CSV quoting, JSON escaping) and Python only
moves bytes. The header, context lines and row-count line still come from the Python writers, so a file
is byte for byte the Python path's (tests/reporting/test_copy_export.py compares both on random data).

Rules reproduced in SQL, each the Python path's exactly:

- formula-safe cells (`apps.core.spreadsheet_safety.neutralise`): a text starting with = + - @ tab or CR
  gets a leading quote unless Python's `float()` reads it as a number. The number test is a regular
  expression of `float()`'s grammar (sign, digits with single underscores between them, fraction,
  exponent, inf/infinity/nan in any case, surrounding whitespace), whose digit and whitespace classes
  are every character `str.isdecimal()` / `str.isspace()` accepts, as `float()` does;
- CSV quoting (`csv.writer`, QUOTE_MINIMAL): a cell holding the delimiter, `"`, CR or LF is quoted with
  `"` doubled; an empty text and NULL are both an empty cell;
- times: `isoformat()` of the Istanbul time (microseconds only when not zero, offset +HH:MM, seconds of
  the offset when it has some), or `%d.%m.%Y %H:%M:%S` for the Excel dialect; the session's TimeZone is
  Europe/Istanbul during the COPY and restored after it;
- JSON: `json.dumps(..., ensure_ascii=False)` separators and escapes (PostgreSQL's `to_json(text)`
  escapes the same characters the same way: `"`, `\\`, \\b \\f \\n \\r \\t, other controls as \\u00xx).

COPY's text format escapes backslashes and control characters; a block of rows without a backslash is
passed through as it is (only the line ends change), a block with one is unescaped row by row.
"""

import datetime as dt
import functools
import re
import sys

from django.db import DEFAULT_DB_ALIAS, connection, connections

from apps.core.spreadsheet_safety import neutralise
from apps.jobs.models import JobStatus

from . import selectors
from .export_formats import EXCEL_TR, RFC4180, _status_labels

# Rows joined before each write: a few hundred kB, so memory stays flat.
BLOCK_ROWS = 2_000
FORMATS = ("csv", "csv_excel", "json")
# A text JSON writes with an escape: a quote, a backslash or a control character (json.dumps and
# PostgreSQL's to_json escape exactly these, the same way).
JSON_ESCAPED = '["\\\\' + "\x01-\x1f]"  # a regex bracket: quote, backslash (escaped), U+0001-U+001F


def available() -> bool:
    """The COPY writers need PostgreSQL (the Python writers remain for SQLite)."""
    return connection.vendor == "postgresql"


def _ranges(codepoints) -> str:
    """A regex bracket body for the code points (sorted runs as a-b); none of them is special in a bracket."""
    out, start, prev = [], None, None
    for cp in codepoints:
        if start is None:
            start = prev = cp
        elif cp == prev + 1:
            prev = cp
        else:
            out.append((start, prev))
            start = prev = cp
    if start is not None:
        out.append((start, prev))
    return "".join(chr(a) if a == b else f"{chr(a)}-{chr(b)}" for a, b in out)


@functools.cache
def number_regex() -> str:
    """PostgreSQL regex (ARE) of the texts Python's float() accepts (see the module docstring)."""
    digits = _ranges(cp for cp in range(sys.maxunicode + 1) if chr(cp).isdecimal())
    spaces = _ranges(cp for cp in range(sys.maxunicode + 1) if chr(cp).isspace())
    d = f"[{digits}]"
    part = f"{d}(?:_?{d})*"
    numeric = f"(?:{part}(?:\\.(?:{part})?)?|\\.{part})(?:[eE][+-]?{part})?"
    special = "[iI][nN][fF](?:[iI][nN][iI][tT][yY])?|[nN][aA][nN]"
    return f"^[{spaces}]*[+-]?(?:{numeric}|{special})[{spaces}]*$"


@functools.cache
def whole_minute_offsets_since() -> dt.datetime:
    """The first day (UTC) from which REPORT_TZ's UTC offset is a whole number of minutes up to 2200."""
    day, last_odd = dt.datetime(1800, 1, 1, tzinfo=dt.UTC), None
    end = dt.datetime(2200, 1, 1, tzinfo=dt.UTC)
    while day < end:
        if day.astimezone(selectors.REPORT_TZ).utcoffset().total_seconds() % 60:
            last_odd = day
        day += dt.timedelta(days=1)
    return (last_odd + dt.timedelta(days=1)) if last_odd else dt.datetime(1800, 1, 1, tzinfo=dt.UTC)


def _py_csv_cell(value: str, delimiter: str) -> str:
    """A constant cell (a status label) as csv.writer writes it after `neutralise`."""
    value = neutralise(value)
    if any(c in value for c in (delimiter, '"', "\r", "\n")):
        return '"' + value.replace('"', '""') + '"'
    return value


def _lit(value: str) -> str:
    """A SQL string literal (standard_conforming_strings is on in every supported PostgreSQL)."""
    if "\x00" in value:
        raise ValueError("NUL in a literal")
    return "'" + value.replace("'", "''") + "'"


class _SQL:
    """Expressions over the inner query's columns c1..c13 (selectors.EXPORT_ROW_FIELDS)."""

    def __init__(self, dialect=None):
        self.dialect = dialect

    def safe(self, col: str) -> str:
        """neutralise() in SQL: a formula-looking text gets a leading quote."""
        return (
            f"CASE WHEN ascii({col}) IN (61, 43, 45, 64, 9, 13) "  # = + - @ tab CR
            f"AND {col} !~ {_lit(number_regex())} THEN '''' || {col} ELSE {col} END"
        )

    def csv_text(self, col: str) -> str:
        """A text column as a formula-safe, csv-quoted cell ('' for NULL).

        The quote neutralise() may add is not special to CSV, so the column itself decides the quoting.
        """
        d = self.dialect.delimiter
        safe = self.safe(col)
        special = _lit("[" + d + '"\r\n]')
        return (
            f"CASE WHEN {col} ~ {special} THEN '\"' || replace({safe}, '\"', '\"\"') || '\"' "
            f"ELSE coalesce({safe}, '') END"
        )

    @staticmethod
    def iso(col: str) -> str:
        """datetime.isoformat() of the Istanbul time (the session's TimeZone is Europe/Istanbul).

        Since `whole_minute_offsets_since()` the zone's offset is whole minutes: one to_char with the
        microseconds, dropped when they are zero (".000000" can appear nowhere else). Before it, the
        general form, which adds the offset's seconds as isoformat() does (local mean time).
        """
        plain = 'YYYY-MM-DD"T"HH24:MI:SS'
        since = _lit(whole_minute_offsets_since().isoformat())
        odd_offset = (
            f"to_char({col}, '{plain}') || CASE WHEN date_trunc('second', {col}) = {col} THEN '' "
            f"ELSE to_char({col}, '.US') END || to_char({col}, 'TZH:TZM') || CASE WHEN "
            f"date_part('timezone', {col})::int % 60 = 0 THEN '' ELSE ':' "
            f"|| lpad((abs(date_part('timezone', {col})::int) % 60)::text, 2, '0') END"
        )
        return (
            f"CASE WHEN {col} >= {since}::timestamptz THEN replace(to_char({col}, '{plain}.USTZH:TZM'), '.000000', '') "
            f"ELSE {odd_offset} END"
        )

    def csv_time(self, col: str) -> str:
        if self.dialect.time_format is None:
            return f"coalesce({self.iso(col)}, '')"
        if self.dialect.time_format != "%d.%m.%Y %H:%M:%S":
            raise ValueError(f"no SQL for the time format {self.dialect.time_format!r}")
        return f"coalesce(to_char({col}, 'DD.MM.YYYY HH24:MI:SS'), '')"


def _csv_line(dialect) -> str:
    s = _SQL(dialect)
    labels = _status_labels()
    whens = " ".join(
        f"WHEN {_lit(code)} THEN {_lit(_py_csv_cell(labels[code], dialect.delimiter))}" for code in JobStatus.values
    )
    status_label = f"CASE c7 {whens} ELSE {s.csv_text('c7')} END"
    cells = [
        "c1::text",
        s.csv_text("c2"),
        s.csv_text("c13"),
        s.csv_text("c3"),
        s.csv_text("c4"),
        s.csv_text("c5"),
        s.csv_text("c6"),
        status_label,
        s.csv_text("c7"),
        "coalesce(c8::text, '')",
        s.csv_time("c9"),
        s.csv_time("c10"),
        s.csv_time("c11"),
        "coalesce(c12::text, '')",
    ]
    # One concat() call: a chain of || copies the growing line once per cell.
    return "concat(" + f", {_lit(dialect.delimiter)}, ".join(cells) + ")"


def _json_line() -> str:
    s = _SQL()

    def text(col):
        # to_json only for the rare text that needs an escape (it looks its type up on every call).
        return (
            f"CASE WHEN {col} IS NULL THEN 'null' WHEN {col} ~ {_lit(JSON_ESCAPED)} THEN to_json({col})::text "
            f"ELSE concat('\"', {col}, '\"') END"
        )

    def time(col):
        return f"coalesce('\"' || {s.iso(col)} || '\"', 'null')"

    def number(col):
        return f"coalesce({col}::text, 'null')"

    values = [
        ("id", "'\"' || c1::text || '\"'"),
        ("external_id", text("c2")),
        ("tenant", text("c3")),
        ("model_type", text("c4")),
        ("machine", text("c5")),
        ("post", text("c6")),
        ("status", text("c7")),
        ("progress", number("c8")),
        ("created_at", time("c9")),
        ("started_at", time("c10")),
        ("finished_at", time("c11")),
        ("duration_ms", number("c12")),
    ]
    parts = []
    for i, (key, expr) in enumerate(values):
        parts.append(_lit(("{" if i == 0 else ", ") + f'"{key}": '))
        parts.append(f"({expr})")
    parts.append("'}'")
    return "concat(" + ", ".join(parts) + ")"


def line_sql(fmt: str) -> str:
    if fmt == "csv":
        return _csv_line(RFC4180)
    if fmt == "csv_excel":
        return _csv_line(EXCEL_TR)
    if fmt == "json":
        return _json_line()
    raise ValueError(fmt)


_UNESCAPE = re.compile(rb"\\(.)", re.DOTALL)
_UNESCAPES = {b"\\": b"\\", b"b": b"\b", b"f": b"\f", b"n": b"\n", b"r": b"\r", b"t": b"\t", b"v": b"\v"}


def _unescape(row: bytes) -> bytes:
    """A COPY text-format field back to its bytes (the only escapes COPY TO writes for a text column)."""
    return _UNESCAPE.sub(lambda m: _UNESCAPES.get(m.group(1), m.group(1)), row)


def copy_lines(user, filters: dict, *, as_of: int, fmt: str, progress=None, progress_every: int = 20_000):
    """Yield blocks of finished lines (bytes), each line WITHOUT its separator, and the rows in the block.

    Blocks are (list_or_joined, n): `joined` is the lines joined by b"\\n" (no backslash anywhere, the fast
    path) or a list of lines. `progress(n)` is called every `progress_every` rows while the COPY runs; it
    must not use this connection (it is busy with the COPY).
    """
    import psycopg

    inner = selectors.report_jobs(user, filters).filter(id__lte=as_of).order_by("-id")
    inner = inner.values_list("id", *selectors.EXPORT_ROW_FIELDS)
    sql, params = inner.query.sql_with_params()
    cols = ", ".join(["id", *(f"c{i}" for i in range(1, len(selectors.EXPORT_ROW_FIELDS) + 1))])
    line = line_sql(fmt).replace("%", "%%")  # the statement has %s parameters
    query = f"COPY (SELECT {line} FROM ({sql}) AS r({cols}) ORDER BY r.id DESC) TO STDOUT"  # noqa: S608
    connection.ensure_connection()
    raw = connection.connection
    cursor = psycopg.ClientCursor(raw)
    cursor.execute("SELECT current_setting('TimeZone')")
    previous_tz = cursor.fetchone()[0]
    cursor.execute("SET TIME ZONE 'Europe/Istanbul'")
    count = 0
    try:
        with cursor.copy(query, params) as copy:
            rows = []
            for data in copy:
                rows.append(bytes(data))
                if len(rows) == BLOCK_ROWS:
                    count += len(rows)
                    yield _block(rows)
                    rows = []
                    if progress is not None and count % progress_every == 0:
                        progress(count)
            if rows:
                count += len(rows)
                yield _block(rows)
    finally:
        try:
            cursor.execute("SELECT set_config('TimeZone', %s, false)", [previous_tz])
        except psycopg.Error:
            pass  # an aborted transaction: its rollback undoes the SET TIME ZONE as well
        finally:
            cursor.close()


def _block(rows: list[bytes]):
    joined = b"".join(rows)
    if b"\\" not in joined:
        return joined[:-1], len(rows)
    return [_unescape(r[:-1]) for r in rows], len(rows)


def _joined(block, sep: bytes) -> bytes:
    lines, _n = block
    if isinstance(lines, bytes):
        return lines.replace(b"\n", sep) if sep != b"\n" else lines
    return sep.join(lines)


def write_csv_rows(blocks, out) -> int:
    """Write CSV lines (CRLF after each) from copy_lines' blocks; the row count."""
    count = 0
    for block in blocks:
        out.write(_joined(block, b"\r\n"))
        out.write(b"\r\n")
        count += block[1]
    return count


def write_json_rows(blocks, out) -> int:
    """Write JSON rows as export_formats.write_json does ("\\n" before the first, ",\\n" before the others)."""
    count = 0
    for block in blocks:
        out.write(b",\n" if count else b"\n")
        out.write(_joined(block, b",\n"))
        count += block[1]
    return count


class SideProgress:
    """Progress written on a connection of its own while the export's connection is busy with COPY.

    It never waits: a row another transaction holds (a test's, or the claim still open) is skipped.
    """

    def __init__(self, table: str, pk):
        self.table, self.pk, self.conn = table, pk, None

    def __call__(self, n: int):
        try:
            if self.conn is None:
                self.conn = connections.create_connection(DEFAULT_DB_ALIAS)
            with self.conn.cursor() as c:
                c.execute(
                    f"UPDATE {self.table} SET rows_written = %s WHERE id IN "  # noqa: S608 - our own table name
                    f"(SELECT id FROM {self.table} WHERE id = %s FOR UPDATE SKIP LOCKED)",
                    [n, self.pk],
                )
        except Exception:  # progress is advisory; the export itself must not fail for it
            self.close()

    def close(self):
        if self.conn is not None:
            try:
                self.conn.close()
            finally:
                self.conn = None


def write(fmt: str, user, filters: dict, *, as_of: int, out, meta: dict, progress=None) -> int:
    """The whole file of a CSV, Excel-CSV or JSON export, its rows by COPY; the row count."""
    from .export_formats import json_head, json_tail, write_csv_head, write_csv_tail

    blocks = copy_lines(user, filters, as_of=as_of, fmt=fmt, progress=progress)
    if fmt == "json":
        out.write(json_head(meta))
        count = write_json_rows(blocks, out)
        out.write(json_tail(count))
        return count
    dialect = EXCEL_TR if fmt == "csv_excel" else RFC4180
    write_csv_head(out, meta, dialect)
    count = write_csv_rows(blocks, out)
    write_csv_tail(out, count, dialect)
    return count
