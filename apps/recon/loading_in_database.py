"""PostgreSQL reads the ERP export: COPY of the raw CSV into a temporary table, then one INSERT ... SELECT
that checks, types and keys every cell into `recon_staged_row`.

The contract is the Python loader's (`loading.load`): the same staged rows for every file this path
accepts, and it accepts a file only when it can be sure of that. So the SQL does not report errors; it
recognises the forms of value it reads exactly as Python does (ASCII numbers, ISO 8601 and the
dd.mm.yyyy / dd/mm/yyyy timestamps, text up to 64 characters after Python's whitespace strip) and any
other cell, a bad one or a rare good one (Arabic-Indic digits, `1_0`, a `+0300` offset, a local time
within 3 hours of a DST change), raises inside a savepoint. Then `load_in_database` returns None and
the file goes the Python way, which reports the row, column and message of each error as it always has.

Declined before reading a row: another encoding than UTF-8 / cp1254; a header with errors (the Python
path reports them, it stops at the header anyway); a composite key with `progress` in it (PostgreSQL
prints floats differently from Python); a `\\.` line (COPY's end-of-data marker); a line with a quote that
is not a well-formed quoted field (Python's csv and PostgreSQL's COPY read `a"b` differently). Rows of
another width than the header and stray carriage returns make COPY itself fail, also a savepoint rollback.
"""

import codecs
import csv
import io
import logging
import re

import psycopg
from django.db import DatabaseError, connection, transaction

from .constants import TIME_FIELDS
from .loading import Outcome, _header_fields, detect_delimiter, detect_encoding

logger = logging.getLogger(__name__)

_CHUNK = 1 << 20
# Python's str.strip() removes exactly the characters for which str.isspace() is true.
_WHITESPACE = "".join(c for c in map(chr, range(0x110000)) if c.isspace())
# Python's csv refuses a field longer than this (csv.field_size_limit()): so must we.
_FIELD_LIMIT = csv.field_size_limit()
# Bytes cp1254 leaves undefined (Python refuses them; PostgreSQL's WIN1254 might not).
_CP1254_UNDEFINED = (b"\x81", b"\x8d", b"\x8e", b"\x8f", b"\x90", b"\x9d", b"\x9e")
_PG_ENCODINGS = {"utf-8": "UTF8", "utf-8-sig": "UTF8", "cp1254": "WIN1254"}
_KEY_PARTS = ("external_id", "machine", "model_type", "status", *TIME_FIELDS)

_NUMBER = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_DATE = r"[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
_CLOCK = r"([01][0-9]|2[0-3]):[0-5][0-9]"
# datetime.fromisoformat's forms that PostgreSQL reads the same (fractions: 1-6 digits, PostgreSQL rounds more).
_ISO_NAIVE = rf"^{_DATE}([T ]{_CLOCK}(:[0-5][0-9](\.[0-9]{{1,6}})?)?)?$"
_ISO_OFFSET = rf"^{_DATE}[T ]{_CLOCK}(:[0-5][0-9](\.[0-9]{{1,6}})?)?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
# loading._TIME_FORMATS, two-digit day and month only (strptime also takes one digit: those go to Python).
_DOTTED = rf"^(0[1-9]|[12][0-9]|3[01])\.(0[1-9]|1[0-2])\.[0-9]{{4}}( {_CLOCK}(:[0-5][0-9])?)?$"
_SLASHED = rf"^(0[1-9]|[12][0-9]|3[01])/(0[1-9]|1[0-2])/[0-9]{{4}}( {_CLOCK})?$"


class _Declined(Exception):
    """Raised inside the savepoint: roll this path's work back, the Python path takes the file."""


def _quoted_line_pattern(delimiter: str) -> re.Pattern:
    """A line whose every field is unquoted without a quote in it, or quoted with only doubled quotes inside."""
    d = re.escape(delimiter.encode())
    field = rb'(?:"(?:[^"\r\n]|"")*"|[^"\r\n' + d + rb"]*)"
    line = field + rb"(?:" + d + field + rb")*"
    return re.compile(rb"(?:" + line + rb"\r?\n)*" + line + rb"\r?")


def _header(sample: bytes, encoding: str, delimiter: str):
    """The first CSV record of the sample as Python reads it, or None when the sample cuts it short."""
    if len(sample) == _CHUNK:
        cut = sample.rfind(b"\n")
        if cut < 0:
            return None
        sample = sample[: cut + 1]  # whole lines only: a multi-byte character may straddle the sample's end
    text = sample.decode(encoding, errors="strict")
    rows = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    return next(rows, None)


def _time_sql(column: str, tz_param: str) -> tuple[str, str]:
    """(local timestamp or NULL, aware timestamptz or NULL) of a trimmed cell; a form not listed raises."""
    local = f"""CASE WHEN {column} = '' OR {column} ~ '{_ISO_OFFSET}' THEN NULL
                     WHEN {column} ~ '{_ISO_NAIVE}' THEN CAST({column} AS timestamp)
                     WHEN {column} ~ '{_DOTTED}' OR {column} ~ '{_SLASHED}' THEN make_timestamp(
                         CAST(substr({column}, 7, 4) AS int), CAST(substr({column}, 4, 2) AS int),
                         CAST(substr({column}, 1, 2) AS int), COALESCE(CAST(NULLIF(substr({column}, 12, 2), '') AS int), 0),
                         COALESCE(CAST(NULLIF(substr({column}, 15, 2), '') AS int), 0),
                         COALESCE(CAST(NULLIF(substr({column}, 18, 2), '') AS int), 0))
                     ELSE pg_temp.recon_declined(CAST(NULL AS timestamp), {column}) END"""
    aware = f"CASE WHEN {column} ~ '{_ISO_OFFSET}' THEN CAST({column} AS timestamptz) END"
    del tz_param
    return local, aware


def _sql(positions: dict, config: dict, width: int) -> tuple[str, list]:
    """The INSERT ... SELECT from the raw table into recon_staged_row, and its parameters."""
    tz = config.get("time_zone") or "UTC"
    key_config = config.get("key") or {}
    prefer_external = key_config.get("prefer", "external_id") == "external_id"
    composite = list(key_config.get("composite") or ["machine", "model_type", "planned_start"])
    raw = [f"c{i}" for i in range(width)]
    # Level 1: each used cell trimmed as Python's str.strip() does; blank rows (every cell empty) dropped.
    trimmed = []
    for name, index in positions.items():
        trimmed.append(f"btrim(COALESCE(c{index}, ''), %(ws)s) AS t_{name}")
    unused_long = " OR ".join(f"char_length(c{i}) > {_FIELD_LIMIT}" for i in range(width)) or "false"
    blank = " AND ".join(f"COALESCE(c{i}, '') = ''" for i in range(width))
    # Level 2: typed values. Text: at most 64 characters. Progress: the Python path's number forms.
    typed = ["rn"]
    for name in positions:
        t = f"t_{name}"
        if name in TIME_FIELDS:
            local, aware = _time_sql(t, "tz")
            typed += [f"{local} AS l_{name}", f"{aware} AS z_{name}"]
        elif name == "progress":
            # Python: spaces removed, a decimal comma when there is no point, float(), 0 <= n <= 100.
            q = f"CASE WHEN strpos({t}, ',') > 0 AND strpos({t}, '.') = 0 THEN replace(replace({t}, ' ', ''), ',', '.') ELSE replace({t}, ' ', '') END"
            typed.append(
                f"""CASE WHEN {q} = '' THEN NULL
                         WHEN {q} ~ '{_NUMBER}' THEN CAST({q} AS double precision)
                         ELSE pg_temp.recon_declined(CAST(NULL AS double precision), {t}) END AS v_progress"""
            )
        else:
            typed.append(
                f"CASE WHEN char_length({t}) <= 64 THEN {t} ELSE pg_temp.recon_declined(CAST(NULL AS text), {t}) END AS v_{name}"
            )
    # Level 3: epoch seconds (Python: int(timestamp()), so truncated), checks, the key.
    values = {}
    checks = []
    for name in ("external_id", "machine", "model_type", "status"):
        values[name] = f"v_{name}" if name in positions else "''"
    for name in TIME_FIELDS:
        if name not in positions:
            values[name] = "CAST(NULL AS bigint)"
            continue
        moment = f"COALESCE(z_{name}, l_{name} AT TIME ZONE %(tz)s)"
        values[name] = f"CAST(trunc(extract(epoch FROM {moment})) AS bigint)"
        if tz != "UTC":
            # zoneinfo (fold=0) and PostgreSQL may place a local time differently near a DST change: the
            # same offset 3 hours before and after means there is no change near it.
            checks.append(
                f"(l_{name} IS NULL OR ((l_{name} AT TIME ZONE %(tz)s) - interval '3 hours') AT TIME ZONE %(tz)s"
                f" = l_{name} - interval '3 hours' AND ((l_{name} AT TIME ZONE %(tz)s) + interval '3 hours')"
                f" AT TIME ZONE %(tz)s = l_{name} + interval '3 hours')"
            )
    values["progress"] = "v_progress" if "progress" in positions else "CAST(NULL AS double precision)"
    parts = []
    present = []
    for part in composite:
        value = values[part]
        if part in TIME_FIELDS:
            present.append(f"{value} IS NOT NULL")
            parts.append(f"CAST(floor({value} / 60.0) AS bigint)::text")
        else:
            present.append(f"{value} <> ''")
            parts.append(value)
    composite_sql = "'c|' || " + " || '|' || ".join(parts)
    key = f"CASE WHEN {' AND '.join(present)} THEN {composite_sql} END"
    if prefer_external:
        key = f"CASE WHEN {values['external_id']} <> '' THEN 'e|' || {values['external_id']} ELSE {key} END"
    if "progress" in positions:
        checks.append("(v_progress IS NULL OR v_progress BETWEEN 0 AND 100)")
    if "status" in positions:
        checks.append("v_status <> ''")
    checks.append("k IS NOT NULL")
    ok = " AND ".join(checks)
    columns = ", ".join(
        values[name] if name not in ("key",) else "k"
        for name in ("external_id", "machine", "model_type", "planned_start", "status", "progress", "started_at", "finished_at")
    )
    # OFFSET 0 keeps each level a separate scan step, so no expression is computed twice.
    sql = f"""
        INSERT INTO recon_staged_row (file_id, row_number, key, external_id, machine, model_type, planned_start,
                                      status, progress, started_at, finished_at)
        SELECT %(file)s, rn, k, {columns}
        FROM (
            SELECT *, {key} AS k FROM (
                SELECT {", ".join(typed)} FROM (
                    SELECT rn, {", ".join(trimmed)} FROM recon_raw
                    WHERE rn > 1 AND NOT ({blank})
                      AND (CASE WHEN {unused_long} THEN pg_temp.recon_declined(true, 'a field over the csv size limit') ELSE true END)
                    OFFSET 0
                ) level1 OFFSET 0
            ) level2 OFFSET 0
        ) level3
        WHERE CASE WHEN {ok} THEN true ELSE pg_temp.recon_declined(true, 'row ' || rn) END
    """  # noqa: S608 (fixed expressions; values are parameters)
    del raw
    return sql, {"ws": _WHITESPACE, "tz": tz}


def load_in_database(stream, *, file_id, config, encoding="", delimiter="", on_progress=None) -> Outcome | None:
    """Stage a CSV file by PostgreSQL's own COPY parse; None when the Python path must take it (nothing staged)."""
    sample = stream.read(_CHUNK)
    stream.seek(0)
    try:
        encoding = encoding or detect_encoding(sample[:65536])
        encoding = codecs.lookup(encoding).name
    except LookupError:
        return None
    if encoding not in _PG_ENCODINGS:
        return None
    outcome = Outcome(file_format="csv", encoding=encoding)
    try:
        if not delimiter:
            first = sample[:65536].decode(encoding, errors="replace").lstrip("\ufeff").splitlines()
            delimiter = detect_delimiter(first[0] if first else "")
        if len(delimiter) != 1 or delimiter in '"\r\n\\':
            return None
        header = _header(sample, encoding, delimiter)
    except (UnicodeDecodeError, csv.Error):
        return None
    outcome.delimiter = delimiter
    if not header:
        return None
    positions = _header_fields(header, config, outcome)
    if outcome.error_count:
        return None
    composite = list((config.get("key") or {}).get("composite") or ["machine", "model_type", "planned_start"])
    if any(part not in _KEY_PARTS for part in composite):
        return None
    width = len(header)
    sql, params = _sql(positions, config, width)
    params["file"] = file_id
    quoted_line = _quoted_line_pattern(delimiter)
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            _create_scratch(cursor, width)
            raw_cursor = cursor.cursor
            columns = ", ".join(f"c{i}" for i in range(width))
            # The delimiter is one character checked above; quote doubling keeps the literal literal.
            literal = "E'\\t'" if delimiter == "\t" else "'" + delimiter.replace("'", "''") + "'"
            copy_sql = (
                f"COPY recon_raw ({columns}) FROM STDIN "
                f"(FORMAT csv, DELIMITER {literal}, ENCODING '{_PG_ENCODINGS[encoding]}')"
            )
            lines = 0
            with raw_cursor.copy(copy_sql) as copy:
                tail = b""
                pending = b""
                while chunk := stream.read(_CHUNK):
                    if b"\\." in chunk or tail + chunk[:1] == b"\\.":
                        raise _Declined("end-of-data marker")
                    if encoding == "cp1254" and any(b in chunk for b in _CP1254_UNDEFINED):
                        raise _Declined("cp1254 byte without a character")
                    if b'"' in chunk or pending:
                        pending = _check_quotes(pending + chunk, quoted_line, final=False)
                    tail = chunk[-1:]
                    copy.write(chunk)
                    lines += chunk.count(b"\n")
                    if on_progress:
                        on_progress(lines)
                if pending:
                    _check_quotes(pending, quoted_line, final=True)
            cursor.execute(sql, params)
            outcome.rows = cursor.rowcount
            if outcome.rows <= 0:
                raise _Declined("no rows")
            cursor.execute("DROP TABLE recon_raw")
    except _Declined as declined:
        logger.info("recon file %s goes the Python way: %s", file_id, declined)
        return None
    except (DatabaseError, psycopg.Error) as refused:  # a cell COPY or a cast refused: the Python path says which and where
        logger.info("recon file %s goes the Python way: %s", file_id, str(refused).splitlines()[0])
        return None
    outcome.parsed_by = "database"
    if on_progress:
        on_progress(outcome.rows)
    return outcome


def _check_quotes(data: bytes, pattern: re.Pattern, *, final: bool) -> bytes:
    """Check the complete lines of `data` for well-formed quoting; return the unfinished last line."""
    if final:
        complete, rest = data, b""
    else:
        cut = data.rfind(b"\n")
        if cut < 0:
            return data
        complete, rest = data[:cut], data[cut + 1 :]
    if b'"' in complete and pattern.fullmatch(complete) is None:
        raise _Declined("a quote the two CSV parsers may read differently")
    return rest


def _create_scratch(cursor, width: int) -> None:
    """The raw table (temporary: no WAL, dropped at commit at the latest) and the function that declines."""
    columns = ", ".join(f"c{i} text" for i in range(width))
    cursor.execute("DROP TABLE IF EXISTS recon_raw")
    cursor.execute(
        f"CREATE TEMPORARY TABLE recon_raw (rn bigint GENERATED ALWAYS AS IDENTITY, {columns}) ON COMMIT DROP"
    )
    # Called only for a cell the SQL does not read: it aborts the statement (the savepoint rolls back).
    cursor.execute(
        "CREATE OR REPLACE FUNCTION pg_temp.recon_declined(kind anyelement, cell text) RETURNS anyelement "
        "LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'recon: a % cell for the Python loader: %', "
        "pg_typeof(kind), left(cell, 80); END $$"
    )
