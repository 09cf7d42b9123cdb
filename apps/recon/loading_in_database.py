"""PostgreSQL reads the ERP export: COPY of the raw CSV into an unlogged scratch table of text columns,
then one INSERT ... SELECT that checks, types and keys every cell into `recon_staged_row`.

Off by default (settings.RECON_LOAD_IN_DATABASE): on the 2-core machine it measured 2x slower than the
Python path, which parses on the client's core while the server writes (docs/recon.md, docs/benchmarks.md).

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
# Bytes cp1254 leaves undefined. Python and PostgreSQL's WIN1254 both refuse them and map the other 248
# bytes alike (checked byte by byte on PostgreSQL 15); declined before COPY all the same.
_CP1254_UNDEFINED = (b"\x81", b"\x8d", b"\x8e", b"\x8f", b"\x90", b"\x9d", b"\x9e")
_PG_ENCODINGS = {"utf-8": "UTF8", "utf-8-sig": "UTF8", "cp1254": "WIN1254"}
_KEY_PARTS = ("external_id", "machine", "model_type", "status", *TIME_FIELDS)

# PostgreSQL's regular expressions: non-capturing groups only (capturing ones made them twice as slow).
_NUMBER = r"^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$"
_DATE = r"[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
_CLOCK = r"(?:[01][0-9]|2[0-3]):[0-5][0-9]"
# datetime.fromisoformat's forms that PostgreSQL reads the same (fractions: 1-6 digits, PostgreSQL rounds more).
_ISO_NAIVE = rf"^{_DATE}(?:[T ]{_CLOCK}(?::[0-5][0-9](?:\.[0-9]{{1,6}})?)?)?$"
_ISO_OFFSET = rf"^{_DATE}[T ]{_CLOCK}(?::[0-5][0-9](?:\.[0-9]{{1,6}})?)?(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])$"
# The commonest form, 2026-11-30T08:00:00Z, first: a regex without alternatives and plain range compares.
_D = "[0-9]"
_CANONICAL_Z = rf"^{_D}{_D}{_D}{_D}-{_D}{_D}-{_D}{_D}T{_D}{_D}:{_D}{_D}:{_D}{_D}Z$"
# loading._TIME_FORMATS, two-digit day and month only (strptime also takes one digit: those go to Python).
_DOTTED = rf"^(?:0[1-9]|[12][0-9]|3[01])\.(?:0[1-9]|1[0-2])\.[0-9]{{4}}(?: {_CLOCK}(?::[0-5][0-9])?)?$"
_SLASHED = rf"^(?:0[1-9]|[12][0-9]|3[01])/(?:0[1-9]|1[0-2])/[0-9]{{4}}(?: {_CLOCK})?$"


class _Declined(Exception):
    """Raised inside the savepoint: roll this path's work back, the Python path takes the file."""


def _quoted_line_pattern(delimiter: str) -> re.Pattern:
    """A line whose every field is unquoted without a quote in it, or quoted with only doubled quotes inside."""
    d = re.escape(delimiter.encode())
    field = rb'(?:"(?:[^"\r\n]|"")*"|[^"\r\n' + d + rb"]*)"
    line = field + rb"(?:" + d + field + rb")*"
    return re.compile(rb"(?:" + line + rb"\r?\n)*" + line + rb"\r?")


# Whitespace next to a field's edge (delimiter, quote, line end): only then does the SQL strip cells.
# Checked with one-byte and substring searches (C speed; a Python regex over 40 MB took seconds).
_WS_SINGLE = b"\t\x0b\x0c\x1c\x1d\x1e\x1f "
_WS_MULTI = {
    "utf-8": (b"\xc2\x85", b"\xc2\xa0", b"\xe1\x9a\x80", b"\xe2\x80", b"\xe2\x81\x9f", b"\xe3\x80\x80"),
    "cp1254": (b"\xa0",),
}
_WS_MULTI["utf-8-sig"] = _WS_MULTI["utf-8"]


def _edge_whitespace(data: bytes, encoding: str, delimiter: str) -> bool:
    """Might a cell in `data` start or end with whitespace? (Conservative: True when unsure.)"""
    # One-byte searches first (memchr); a longer needle only when its first byte is there at all.
    if any(seq[:1] in data and seq in data for seq in _WS_MULTI[encoding]):
        return True
    edges = (delimiter.encode(), b"\r", b"\n", b'"')
    for w in _WS_SINGLE:
        char = bytes([w])
        if char in data and any(char + e in data or e + char in data for e in edges):
            return True
    return False


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


def _time_form_sql(t: str) -> str:
    """0 empty, 1 ISO with an offset, 2 ISO local, 3 dd.mm.yyyy or dd/mm/yyyy local; another form raises."""
    c = ' COLLATE "C"'
    canonical = (
        f"{t} ~ '{_CANONICAL_Z}' AND substr({t}, 6, 2){c} BETWEEN '01' AND '12'"
        f" AND substr({t}, 9, 2){c} BETWEEN '01' AND '31' AND substr({t}, 12, 2){c} <= '23'"
        f" AND substr({t}, 15, 2){c} <= '59' AND substr({t}, 18, 2){c} <= '59'"
    )
    return f"""CASE WHEN {t} = '' THEN 0 WHEN {canonical} THEN 1 WHEN {t} ~ '{_ISO_OFFSET}' THEN 1
                    WHEN {t} ~ '{_ISO_NAIVE}' THEN 2 WHEN {t} ~ '{_DOTTED}' OR {t} ~ '{_SLASHED}' THEN 3
                    ELSE pg_temp.recon_declined(0, {t}) END"""


def _time_sql(t: str, form: str) -> tuple[str, str]:
    """(local timestamp or NULL, aware timestamptz or NULL) of a trimmed cell of the given form."""
    local = f"""CASE {form} WHEN 2 THEN CAST({t} AS timestamp)
                     WHEN 3 THEN make_timestamp(
                         CAST(substr({t}, 7, 4) AS int), CAST(substr({t}, 4, 2) AS int), CAST(substr({t}, 1, 2) AS int),
                         COALESCE(CAST(NULLIF(substr({t}, 12, 2), '') AS int), 0),
                         COALESCE(CAST(NULLIF(substr({t}, 15, 2), '') AS int), 0),
                         COALESCE(CAST(NULLIF(substr({t}, 18, 2), '') AS int), 0)) END"""
    aware = f"CASE {form} WHEN 1 THEN CAST({t} AS timestamptz) END"
    return local, aware


def _trim_sql(column: str) -> str:
    """Python's str.strip(): most cells start and end with a printable ASCII character and need none."""
    c = ' COLLATE "C"'
    return (
        f"CASE WHEN left({column}, 1){c} BETWEEN '!' AND '~' AND right({column}, 1){c} BETWEEN '!' AND '~' "
        f"THEN {column} ELSE btrim(COALESCE({column}, ''), %(ws)s) END"
    )


def _sql(positions: dict, config: dict, width: int, table: str, *, trim=True) -> tuple[str, dict]:
    """The INSERT ... SELECT from the raw table into recon_staged_row, and its parameters.

    Each level is a subquery with OFFSET 0 (not flattened), so an expression another level uses several
    times is computed once per row. A cell of a form the SQL does not read calls pg_temp.recon_declined,
    which raises: the statement, and with it the savepoint, is rolled back.
    """
    tz = config.get("time_zone") or "UTC"
    key_config = config.get("key") or {}
    prefer_external = key_config.get("prefer", "external_id") == "external_id"
    composite = list(key_config.get("composite") or ["machine", "model_type", "planned_start"])
    times = [name for name in positions if name in TIME_FIELDS]
    texts = [name for name in positions if name not in TIME_FIELDS and name != "progress"]
    # Row numbers: the raw table is new and written by one COPY, so its heap order is the file's; no
    # parallel plan for an INSERT. Row 1 is the header; a blank row (every cell empty) is skipped, counted.
    blank = " AND ".join(f"COALESCE(c{i}, '') = ''" for i in range(width))
    level0 = f"SELECT row_number() OVER () AS rn, * FROM {table}"  # noqa: S608 (recon_raw_<int>)

    def cell(i):
        return _trim_sql(f"c{i}") if trim else f"COALESCE(c{i}, '')"

    level1 = ", ".join(["rn", *(f"{cell(i)} AS t_{name}" for name, i in positions.items())])
    level1 = f"""SELECT {level1} FROM ({level0}) raw
                 WHERE rn > 1 AND NOT ({blank})"""  # noqa: S608 (fixed expressions)
    # Level 2: text at most 64 characters; progress in the Python path's number forms; a form per time.
    level2 = ["rn"]
    for name in texts:
        t = f"t_{name}"
        level2.append(
            f"CASE WHEN octet_length({t}) <= 64 OR char_length({t}) <= 64 THEN {t}"
            f" ELSE pg_temp.recon_declined(CAST(NULL AS text), {t}) END"
            f" AS v_{name}"
        )
    if "progress" in positions:
        # Python: spaces removed, a decimal comma when there is no point, float(), then 0 <= n <= 100.
        t = "t_progress"
        q = (
            f"CASE WHEN strpos({t}, ',') > 0 AND strpos({t}, '.') = 0 THEN replace(replace({t}, ' ', ''), ',', '.')"
            f" ELSE replace({t}, ' ', '') END"
        )
        level2.append(f"{q} AS q_progress")
    for name in times:
        level2 += [f"t_{name}", f"{_time_form_sql(f't_{name}')} AS f_{name}"]
    level3 = ["*"]
    if "progress" in positions:
        q = "q_progress"
        level3.append(
            f"""CASE WHEN {q} = '' THEN NULL
                     WHEN ltrim({q}, '0123456789') = '' OR {q} ~ '{_NUMBER}' THEN CAST({q} AS double precision)
                     ELSE pg_temp.recon_declined(CAST(NULL AS double precision), {q}) END AS v_progress"""
        )
    for name in times:
        local, aware = _time_sql(f"t_{name}", f"f_{name}")
        level3 += [f"{local} AS l_{name}", f"{aware} AS z_{name}"]
    # Level 4: epoch seconds (Python: int(timestamp()), so truncated towards zero).
    level4 = ["*"]
    checks = []
    for name in times:
        level4.append(
            f"CAST(trunc(extract(epoch FROM COALESCE(z_{name}, l_{name} AT TIME ZONE %(tz)s))) AS bigint) AS e_{name}"
        )
        if tz != "UTC":
            # zoneinfo (fold=0) and PostgreSQL may place a local time differently near a DST change: the
            # same offset 3 hours before and after means there is no change near it.
            checks.append(
                f"(l_{name} IS NULL OR ((l_{name} AT TIME ZONE %(tz)s) - interval '3 hours') AT TIME ZONE %(tz)s"
                f" = l_{name} - interval '3 hours' AND ((l_{name} AT TIME ZONE %(tz)s) + interval '3 hours')"
                f" AT TIME ZONE %(tz)s = l_{name} + interval '3 hours')"
            )
    values = {
        name: f"v_{name}" if name in positions else "''" for name in ("external_id", "machine", "model_type", "status")
    }
    values |= {name: f"e_{name}" if name in positions else "CAST(NULL AS bigint)" for name in TIME_FIELDS}
    values["progress"] = "v_progress" if "progress" in positions else "CAST(NULL AS double precision)"
    # Level 5: the key, as loading.load builds it.
    parts, present = [], []
    for part in composite:
        value = values[part]
        if part in TIME_FIELDS:
            present.append(f"{value} IS NOT NULL")
            parts.append(f"CAST(CAST(floor({value} / 60.0) AS bigint) AS text)")
        else:
            present.append(f"{value} <> ''")
            parts.append(value)
    joined = " || '|' || ".join(parts)
    key = f"CASE WHEN {' AND '.join(present)} THEN 'c|' || {joined} END"
    if prefer_external:
        key = f"CASE WHEN {values['external_id']} <> '' THEN 'e|' || {values['external_id']} ELSE {key} END"
    if "progress" in positions:
        checks.append("(v_progress IS NULL OR v_progress BETWEEN 0 AND 100)")
    if "status" in positions:
        checks.append("v_status <> ''")
    checks.append("k IS NOT NULL")
    columns = ", ".join(
        values[name]
        for name in (
            "external_id",
            "machine",
            "model_type",
            "planned_start",
            "status",
            "progress",
            "started_at",
            "finished_at",
        )
    )
    sql = f"""
        INSERT INTO recon_staged_row (file_id, row_number, key, external_id, machine, model_type, planned_start,
                                      status, progress, started_at, finished_at)
        SELECT %(file)s, rn, k, {columns}
        FROM (SELECT *, {key} AS k
              FROM (SELECT {", ".join(level4)}
                    FROM (SELECT {", ".join(level3)}
                          FROM (SELECT {", ".join(level2)} FROM ({level1} OFFSET 0) level1 OFFSET 0) level2
                          OFFSET 0) level3
                    OFFSET 0) level4
              OFFSET 0) level5
        WHERE CASE WHEN {" AND ".join(checks)} THEN true ELSE pg_temp.recon_declined(true, 'row ' || rn) END
    """  # noqa: S608 (fixed expressions and column names; the values are parameters)
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
    table = f"recon_raw_{int(file_id)}"
    quoted_line = _quoted_line_pattern(delimiter)
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            _create_scratch(cursor, width, table)
            raw_cursor = cursor.cursor
            columns = ", ".join(f"c{i}" for i in range(width))
            # The delimiter is one character checked above; quote doubling keeps the literal literal.
            literal = "E'\\t'" if delimiter == "\t" else "'" + delimiter.replace("'", "''") + "'"
            copy_sql = (
                f"COPY {table} ({columns}) FROM STDIN "
                f"(FORMAT csv, DELIMITER {literal}, ENCODING '{_PG_ENCODINGS[encoding]}')"
            )
            read = 0
            line_size = max(1.0, len(sample) / max(1, sample.count(b"\n")))
            trim = False
            with raw_cursor.copy(copy_sql) as copy:
                tail = b""  # the previous chunk's last bytes: a pattern may straddle two chunks
                pending = b""  # the unfinished last line, while quotes are being checked
                unfinished = b""  # the last line so far, for its length
                while chunk := stream.read(_CHUNK):
                    unfinished = _check_line_lengths(chunk, unfinished)
                    joined = tail + chunk
                    if b"\\" in joined and b"\\." in joined:
                        raise _Declined("COPY's end-of-data marker")
                    if encoding == "cp1254" and any(b in chunk for b in _CP1254_UNDEFINED):
                        raise _Declined("a byte cp1254 has no character for")
                    if not trim and _edge_whitespace(joined, encoding, delimiter):
                        trim = True
                    if b'"' in chunk or pending:
                        pending = _check_quotes(pending + chunk, quoted_line, final=False)
                    tail = chunk[-4:]
                    copy.write(chunk)
                    read += len(chunk)
                    if on_progress:
                        on_progress(int(read / line_size))  # an estimate: the rows are counted by the INSERT
                if pending:
                    _check_quotes(pending, quoted_line, final=True)
            cursor.execute("SET LOCAL max_parallel_workers_per_gather = 0")
            sql, params = _sql(positions, config, width, table, trim=trim)
            params["file"] = file_id
            cursor.execute(sql, params)
            outcome.rows = cursor.rowcount
            if outcome.rows <= 0:
                raise _Declined("no rows")
            cursor.execute(f"DROP TABLE {table}")
    except _Declined as declined:
        logger.info("recon file %s goes the Python way: %s", file_id, declined)
        return None
    except (DatabaseError, psycopg.Error) as refused:  # COPY or a cast refused a cell: Python says which, where
        logger.info("recon file %s goes the Python way: %s", file_id, str(refused).splitlines()[0])
        return None
    outcome.parsed_by = "database"
    if on_progress:
        on_progress(outcome.rows)
    return outcome


def _check_line_lengths(chunk: bytes, carried: bytes) -> bytes:
    """Decline a line that may be longer than Python's csv field limit; returns the unfinished last line.

    Every window of half the limit must hold a line end, so no line is longer than the limit (lines a bit
    shorter may be declined too: they go the Python way, which is never wrong, only slower).
    """
    data = carried + chunk
    half = _FIELD_LIMIT // 2
    last = data.rfind(b"\n")
    for start in range(0, max(last, 0) - half + 1, half):
        if data.find(b"\n", start, start + half) < 0:
            raise _Declined("a line over the csv field limit")
    rest = data[last + 1 :]
    if len(rest) > _FIELD_LIMIT:
        raise _Declined("a line over the csv field limit")
    return rest


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


def _create_scratch(cursor, width: int, table: str) -> None:
    """The raw table and the function that declines a cell.

    UNLOGGED, not TEMPORARY: a temporary table lives in the backend's temp_buffers (8 MB by default, fixed
    once a session used one), so a 40 MB file spilled to disk; an unlogged one writes no WAL either and is
    dropped in this transaction (or vanishes with its rollback). Its name carries the file's id.
    """
    columns = ", ".join(f"c{i} text" for i in range(width))
    cursor.execute(f"DROP TABLE IF EXISTS {table}")
    cursor.execute(f"CREATE UNLOGGED TABLE {table} ({columns}) WITH (autovacuum_enabled = false)")
    # Called only for a cell the SQL does not read: it aborts the statement (the savepoint rolls back).
    cursor.execute(
        "CREATE OR REPLACE FUNCTION pg_temp.recon_declined(kind anyelement, cell text) RETURNS anyelement "
        "LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'recon: a % cell for the Python loader: %', "
        "pg_typeof(kind), left(cell, 80); END $$"
    )
