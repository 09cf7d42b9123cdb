"""The comparison: a FULL OUTER JOIN of a file's staged rows with a run's portal snapshot, in the database.

Both sides are staged tables with a precomputed key and times as UTC epoch seconds, so one SQL text
serves PostgreSQL and SQLite (3.39+ has FULL OUTER JOIN); the database returns only the rows that differ,
each with a flag per compared field, and Python turns them into breaks. docs/recon.md says why not Polars.
"""

import hashlib
import json

from django.conf import settings
from django.db import connection

from apps.jobs.models import JobStatus

from .models import BreakKind


def _epoch_sql(column: str) -> str:
    if connection.vendor == "postgresql":
        return f"CAST(floor(extract(epoch from {column})) AS BIGINT)"
    return f"CAST(strftime('%%s', {column}) AS INTEGER)"


def snapshot_portal(run, config: dict) -> int:
    """Copy the tenant's jobs into recon_portal_row for `run`, with the keys the config asks for."""
    key = config.get("key") or {}
    composite = list(key.get("composite") or ["machine", "model_type", "planned_start"])
    parts = {
        "machine": "m.code",
        "model_type": "mt.code",
        # Jobs have no planned start of their own: the time the job was created (queued) stands for it.
        "planned_start": f"CAST({_epoch_sql('j.created_at')} / 60 AS TEXT)",
    }
    composite_sql = " || '|' || ".join(parts[p] for p in composite if p in parts)
    composite_sql = f"'c|' || {composite_sql}"
    if key.get("prefer", "external_id") == "external_id":
        key_sql = (
            "CASE WHEN j.external_id IS NOT NULL AND j.external_id <> '' THEN 'e|' || j.external_id "
            f"ELSE {composite_sql} END"
        )
    else:
        key_sql = composite_sql
    # Built from fixed column expressions only; every value is a %s parameter.
    sql = f"""
        INSERT INTO recon_portal_row (run_id, job_id, key, external_id, status, progress, started_at, finished_at)
        SELECT %s, j.id, {key_sql}, COALESCE(j.external_id, ''), j.status, j.progress,
               {_epoch_sql("j.started_at")}, {_epoch_sql("j.finished_at")}
        FROM jobs_job j
        JOIN catalog_machine m ON m.id = j.machine_id
        JOIN catalog_modeltype mt ON mt.id = j.model_type_id
        WHERE j.tenant_id = %s
    """  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, [run.pk, run.tenant_id])
        return cursor.rowcount


def _status_case(config: dict, params: list) -> str:
    """The ERP's status mapped to ours: the config's map first, then our own codes (either case)."""
    mapping = {str(k): str(v) for k, v in (config.get("status_map") or {}).items()}
    for code in JobStatus.values:
        mapping.setdefault(code, code)
        mapping.setdefault(code.upper(), code)
    whens = []
    for erp_status, ours in mapping.items():
        whens.append("WHEN %s THEN %s")
        params.extend([erp_status, ours])
    # An unknown ERP status maps to itself and so never equals one of ours: a STATUS_MISMATCH.
    return f"CASE e.status {' '.join(whens)} ELSE e.status END"


def fingerprint(profile_id: int, kind: str, key: str) -> str:
    return hashlib.sha256(f"{profile_id}|{kind}|{key}".encode()).hexdigest()[:40]


def _flags(config: dict, columns: list[str]) -> tuple[list[str], list[str], list]:
    """One 0/1 flag expression per compared field (status first), its name, and their %s parameters."""
    tolerances = config.get("tolerances") or {}
    params: list = []
    flags, flag_names = [], []
    if "status" in columns:
        status_sql = _status_case(config, params)
        flags.append(
            f"CASE WHEN e.key IS NOT NULL AND p.key IS NOT NULL AND ({status_sql}) <> p.status THEN 1 ELSE 0 END"
        )
        flag_names.append("status")
    if "progress" in columns:
        tol = tolerances.get("progress") or {}
        flags.append(
            "CASE WHEN e.progress IS NOT NULL AND abs(e.progress - p.progress) > %s "
            "AND abs(e.progress - p.progress) > %s * abs(p.progress) THEN 1 ELSE 0 END"
        )
        params.extend([float(tol.get("abs", 0)), float(tol.get("rel", 0))])
        flag_names.append("progress")
    for name in ("started_at", "finished_at"):
        if name not in columns:
            continue
        window = int((tolerances.get(name) or {}).get("seconds", 0))
        flags.append(
            f"CASE WHEN (e.{name} IS NULL) <> (p.{name} IS NULL) OR abs(e.{name} - p.{name}) > %s THEN 1 ELSE 0 END"
        )
        params.append(window)
        flag_names.append(name)
    return flags, flag_names, params


def _joined_sql(flags: list[str], flag_names: list[str]) -> str:
    """The FULL OUTER JOIN of a file's staged rows (%s) with a snapshot (%s), differing rows only.

    One pass over each side: the window count finds duplicate keys in the same scan as the join. On
    PostgreSQL the window sorts by the key's bytes (COLLATE "C"): the key is an identifier, not text for
    people, and a locale-aware sort of a million keys took twice as long. The portal's `e|` keys need no
    count: a tenant's ERP ids are unique (jobs_job_external_id_per_tenant), so only its composite keys
    can repeat and only they are sorted. Parameters: file, snapshot, snapshot, then the flags'.
    """
    collate = ' COLLATE "C"' if connection.vendor == "postgresql" else ""
    flag_select = "".join(f", {f} AS f_{n}" for f, n in zip(flags, flag_names, strict=True))
    any_flag = " OR ".join(f"f_{n} = 1" for n in flag_names) or "0 = 1"
    # Fixed column expressions only; every value is a %s parameter.
    return f"""
        WITH e AS (
            SELECT s.*, COUNT(*) OVER (PARTITION BY s.key{collate}) AS n
            FROM recon_staged_row s WHERE s.file_id = %s
        ), p AS (
            SELECT r.*, 1 AS n FROM recon_portal_row r WHERE r.run_id = %s AND r.key LIKE 'e|%%'
            UNION ALL
            SELECT r.*, COUNT(*) OVER (PARTITION BY r.key{collate}) AS n
            FROM recon_portal_row r WHERE r.run_id = %s AND r.key NOT LIKE 'e|%%'
        )
        SELECT * FROM (
            SELECT e.key AS e_key, p.key AS p_key, e.n AS e_n, p.n AS p_n, e.row_number,
                   e.external_id AS e_external_id, e.status AS e_status, e.progress AS e_progress,
                   e.started_at AS e_started_at, e.finished_at AS e_finished_at, p.job_id,
                   p.external_id AS p_external_id, p.status AS p_status, p.progress AS p_progress,
                   p.started_at AS p_started_at, p.finished_at AS p_finished_at {flag_select}
            FROM e FULL OUTER JOIN p ON e.key{collate} = p.key{collate}
        ) joined
        WHERE e_n > 1 OR p_n > 1 OR e_key IS NULL OR p_key IS NULL OR {any_flag}
    """  # noqa: S608


def _side_sql(prefix: str, columns: list[str]) -> str:
    wanted = [c for c in ("status", "progress", "started_at", "finished_at") if c in columns or prefix == "p"]
    return "jsonb_build_object(" + ", ".join(f"'{c}', {prefix}_{c}" for c in wanted) + ")"


def found_sql(run, config: dict, *, columns: list[str]) -> tuple[str, list]:
    """PostgreSQL: every break of the run as rows (fingerprint, kind, key, job_id, external_id, details jsonb).

    The same breaks `compare()` builds in Python on SQLite, with the same fingerprints (sha256 in SQL), so
    a break first seen by either path is found again by the other. Nothing per row reaches Python.
    """
    flags, flag_names, flag_params = _flags(config, columns)
    single = "COALESCE(e_n, 0) <= 1 AND COALESCE(p_n, 0) <= 1"
    fields = " || ".join(
        f"CASE WHEN f_{n} = 1 THEN jsonb_build_object('{n}', jsonb_build_object('erp', e_{n}, 'portal', p_{n})) "
        "ELSE '{}'::jsonb END"
        for n in flag_names
        if n != "status"
    )
    field_any = " OR ".join(f"f_{n} = 1" for n in flag_names if n != "status")
    parts = [
        f"""SELECT 'MISSING_IN_PORTAL' AS kind, e_key AS key, e_key AS fp_key, NULL::bigint AS job_id,
                   COALESCE(e_external_id, '') AS external_id,
                   jsonb_build_object('row', row_number, 'erp', {_side_sql("e", columns)}) AS details
            FROM joined WHERE p_key IS NULL AND {single}""",  # noqa: S608 (fixed expressions)
        f"""SELECT 'MISSING_IN_ERP', p_key, p_key, job_id, COALESCE(p_external_id, ''),
                   jsonb_build_object('portal', {_side_sql("p", columns)})
            FROM joined WHERE e_key IS NULL AND {single}""",  # noqa: S608
        """SELECT 'DUPLICATE_KEY', e_key, 'erp|' || e_key, NULL::bigint, '',
                  jsonb_build_object('side', 'erp', 'rows', jsonb_agg(DISTINCT row_number ORDER BY row_number))
           FROM joined WHERE e_n > 1 GROUP BY e_key""",
        """SELECT 'DUPLICATE_KEY', p_key, 'portal|' || p_key, NULL::bigint, '',
                  jsonb_build_object('side', 'portal', 'jobs', jsonb_agg(DISTINCT job_id ORDER BY job_id))
           FROM joined WHERE p_n > 1 GROUP BY p_key""",
    ]
    if "status" in flag_names:
        parts.append(
            f"""SELECT 'STATUS_MISMATCH', e_key, e_key, job_id, COALESCE(p_external_id, ''),
                       jsonb_build_object('row', row_number, 'erp', e_status, 'portal', p_status)
                FROM joined WHERE e_key IS NOT NULL AND p_key IS NOT NULL AND {single} AND f_status = 1"""  # noqa: S608
        )
    if field_any:
        parts.append(
            f"""SELECT 'FIELD_MISMATCH', e_key, e_key, job_id, COALESCE(p_external_id, ''),
                       jsonb_build_object('row', row_number, 'fields', {fields})
                FROM joined WHERE e_key IS NOT NULL AND p_key IS NOT NULL AND {single} AND ({field_any})"""  # noqa: S608
        )
    union = "\n UNION ALL \n".join(parts)
    joined = _joined_sql(flags, flag_names)
    # Fixed expressions only; the profile id, file, snapshot and tolerances are %s parameters.
    sql = f"""
        WITH joined AS MATERIALIZED ({joined}),
        found AS (SELECT * FROM ({union}) parts)
        SELECT left(encode(sha256(convert_to(%s || '|' || kind || '|' || fp_key, 'UTF8')), 'hex'), 40)
                   AS fingerprint, kind, key, job_id, external_id, details
        FROM found
    """  # noqa: S608
    snapshot_id = run.snapshot_of_id or run.pk
    # The flags appear in the SELECT of `joined`: their parameters come after the file and snapshot ids.
    return sql, [run.file_id, snapshot_id, snapshot_id, *flag_params, str(run.profile_id)]


def compare(run, config: dict, *, columns: list[str]) -> list[dict]:
    """Every difference between the run's file and its portal snapshot, as break dicts (not yet written)."""
    if connection.vendor == "postgresql":
        sql, params = found_sql(run, config, columns=columns)
        with connection.cursor() as cursor:
            set_work_mem(cursor)
            cursor.execute(sql, params)
            names = [c[0] for c in cursor.description]
            return [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]
    file_id = run.file_id
    snapshot_id = run.snapshot_of_id or run.pk
    breaks = []
    with connection.cursor() as cursor:
        flags, flag_names, params = _flags(config, columns)
        cursor.execute(_joined_sql(flags, flag_names), [file_id, snapshot_id, snapshot_id, *params])
        names = [c[0] for c in cursor.description]
        erp_dups: dict[str, set] = {}
        portal_dups: dict[str, set] = {}
        for values in cursor.fetchall():
            row = dict(zip(names, values, strict=True))
            if (row["e_n"] or 0) > 1 or (row["p_n"] or 0) > 1:
                # A key that is a DUPLICATE_KEY on either side is that break only, not also a missing row.
                if (row["e_n"] or 0) > 1:
                    erp_dups.setdefault(row["e_key"], set()).add(row["row_number"])
                if (row["p_n"] or 0) > 1:
                    portal_dups.setdefault(row["p_key"], set()).add(row["job_id"])
                continue
            if row["p_key"] is None:
                breaks.append(
                    {
                        "kind": BreakKind.MISSING_IN_PORTAL,
                        "key": row["e_key"],
                        "job_id": None,
                        "external_id": row["e_external_id"] or "",
                        "details": {"row": row["row_number"], "erp": _side(row, "e", columns)},
                    }
                )
                continue
            if row["e_key"] is None:
                breaks.append(
                    {
                        "kind": BreakKind.MISSING_IN_ERP,
                        "key": row["p_key"],
                        "job_id": row["job_id"],
                        "external_id": row["p_external_id"] or "",
                        "details": {"portal": _side(row, "p", columns)},
                    }
                )
                continue
            common = {"key": row["e_key"], "job_id": row["job_id"], "external_id": row["p_external_id"] or ""}
            if row.get("f_status"):
                breaks.append(
                    {
                        **common,
                        "kind": BreakKind.STATUS_MISMATCH,
                        "details": {"row": row["row_number"], "erp": row["e_status"], "portal": row["p_status"]},
                    }
                )
            fields = {
                name: {"erp": row[f"e_{name}"], "portal": row[f"p_{name}"]}
                for name in flag_names
                if name != "status" and row.get(f"f_{name}")
            }
            if fields:
                breaks.append(
                    {
                        **common,
                        "kind": BreakKind.FIELD_MISMATCH,
                        "details": {"row": row["row_number"], "fields": fields},
                    }
                )
    for side, dups in (("erp", erp_dups), ("portal", portal_dups)):
        for key, items in sorted(dups.items()):
            details = {"side": side, "rows" if side == "erp" else "jobs": sorted(items)}
            breaks.append(
                {"kind": BreakKind.DUPLICATE_KEY, "key": key, "side": side, "details": details, "job_id": None}
            )
    for item in breaks:
        key = item["key"] if item["kind"] != BreakKind.DUPLICATE_KEY else f"{item['side']}|{item['key']}"
        item["fingerprint"] = fingerprint(run.profile_id, item["kind"], key)
        item.setdefault("external_id", "")
    return breaks


def set_work_mem(cursor) -> None:
    """The window counts sort each side by key; with the default 4 MB the sort spills to disk."""
    if connection.vendor == "postgresql" and settings.RECON_WORK_MEM and not connection.get_autocommit():
        cursor.execute("SELECT set_config('work_mem', %s, true)", [settings.RECON_WORK_MEM])


def _side(row, prefix, columns):
    wanted = [c for c in ("status", "progress", "started_at", "finished_at") if c in columns or prefix == "p"]
    return {c: row[f"{prefix}_{c}"] for c in wanted}


def result_digest(breaks: list[dict]) -> str:
    """sha256 over the sorted breaks: a re-run with the same inputs and config gives the same digest."""
    lines = sorted(
        f"{b['fingerprint']}|{b['kind']}|{json.dumps(b['details'], sort_keys=True, default=str)}" for b in breaks
    )
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()
