"""Triggers that make audit_logs and audit_checkpoints append-only on PostgreSQL and SQLite (see docs/audit.md
for their limits).

audit_logs: allowed are INSERT and the one UPDATE that seals an unsealed row (seq NULL -> set) without
touching its content. audit_checkpoints: allowed are INSERT and the one UPDATE that stores the RFC 3161
token of a checkpoint that has none yet (tsa_token '' -> set), nothing else changed. Refused: every other
UPDATE, DELETE, and (PostgreSQL) TRUNCATE.
"""

CONTENT_COLUMNS = (
    "ts", "actor_type", "actor_id", "action", "object_type", "object_id", "payload", "payload_sha256",
    "tenant_id", "request_id", "client_ip", "version", "payload_canonical",
)  # fmt: skip
# Added by migration audit.0008: guards installed by earlier migrations (before the column exists) leave it out.
LATER_CONTENT_COLUMNS = ("payload_canonical",)
CHECKPOINT_COLUMNS = ("id", "tree_size", "head_hash", "merkle_root", "ts", "key_id", "signature", "frontier")
MESSAGE = "audit_logs is append-only"
# The one DELETE allowed (issue 17, retention): entries up to a recorded purge whose end is a signed checkpoint,
# so only whole checkpoint segments leave and the checkpoint at the new start anchors what remains.
PURGED_THROUGH = (
    "COALESCE((SELECT MAX(p.through_seq) FROM audit_purges p "
    "JOIN audit_checkpoints c ON c.tree_size = p.through_seq), 0)"
)
CHECKPOINT_MESSAGE = "audit_checkpoints is append-only"
TABLES = ("audit_logs", "audit_checkpoints")


def _rows(prefix, columns):
    return ", ".join(f"{prefix}.{c}" for c in columns)


POSTGRES_INSTALL = {
    "audit_logs": [
        f"""
        CREATE OR REPLACE FUNCTION audit_logs_guard() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'UPDATE' AND OLD.seq IS NULL AND NEW.seq IS NOT NULL
               AND ROW({_rows("NEW", CONTENT_COLUMNS)}) IS NOT DISTINCT FROM ROW({_rows("OLD", CONTENT_COLUMNS)}) THEN
                RETURN NEW;
            END IF;
            IF TG_OP = 'DELETE' AND OLD.seq IS NOT NULL AND OLD.seq <= {{purged_through}} THEN
                RETURN OLD;
            END IF;
            RAISE EXCEPTION '{MESSAGE}: % refused', TG_OP USING ERRCODE = '42501';
        END $$;
        """,
        "CREATE OR REPLACE TRIGGER audit_logs_guard_rows BEFORE UPDATE OR DELETE ON audit_logs "
        "FOR EACH ROW EXECUTE FUNCTION audit_logs_guard();",
        "CREATE OR REPLACE TRIGGER audit_logs_guard_truncate BEFORE TRUNCATE ON audit_logs "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_logs_guard();",
    ],
    "audit_checkpoints": [
        f"""
        CREATE OR REPLACE FUNCTION audit_checkpoints_guard() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'UPDATE' AND OLD.tsa_token = '' AND NEW.tsa_token <> ''
               AND ROW({_rows("NEW", CHECKPOINT_COLUMNS)}) IS NOT DISTINCT FROM
                   ROW({_rows("OLD", CHECKPOINT_COLUMNS)}) THEN
                RETURN NEW;
            END IF;
            RAISE EXCEPTION '{CHECKPOINT_MESSAGE}: % refused', TG_OP USING ERRCODE = '42501';
        END $$;
        """,
        "CREATE OR REPLACE TRIGGER audit_checkpoints_guard_rows BEFORE UPDATE OR DELETE ON audit_checkpoints "
        "FOR EACH ROW EXECUTE FUNCTION audit_checkpoints_guard();",
        "CREATE OR REPLACE TRIGGER audit_checkpoints_guard_truncate BEFORE TRUNCATE ON audit_checkpoints "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_checkpoints_guard();",
    ],
}
POSTGRES_REMOVE = {
    "audit_logs": [
        "DROP TRIGGER IF EXISTS audit_logs_guard_rows ON audit_logs;",
        "DROP TRIGGER IF EXISTS audit_logs_guard_truncate ON audit_logs;",
        "DROP FUNCTION IF EXISTS audit_logs_guard();",
    ],
    "audit_checkpoints": [
        "DROP TRIGGER IF EXISTS audit_checkpoints_guard_rows ON audit_checkpoints;",
        "DROP TRIGGER IF EXISTS audit_checkpoints_guard_truncate ON audit_checkpoints;",
        "DROP FUNCTION IF EXISTS audit_checkpoints_guard();",
    ],
}


def _changed(columns):
    return " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in columns)


SQLITE_INSTALL = {
    "audit_logs": [
        f"""
        CREATE TRIGGER IF NOT EXISTS audit_logs_no_update BEFORE UPDATE ON audit_logs
        WHEN OLD.seq IS NOT NULL OR NEW.seq IS NULL OR {_changed(CONTENT_COLUMNS)}
        BEGIN SELECT RAISE(ABORT, '{MESSAGE}: UPDATE refused'); END;
        """,
        f"""
        CREATE TRIGGER IF NOT EXISTS audit_logs_no_delete BEFORE DELETE ON audit_logs
        WHEN OLD.seq IS NULL OR OLD.seq > {{purged_through}}
        BEGIN SELECT RAISE(ABORT, '{MESSAGE}: DELETE refused'); END;
        """,
    ],
    "audit_checkpoints": [
        f"""
        CREATE TRIGGER IF NOT EXISTS audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
        WHEN OLD.tsa_token IS NOT '' OR NEW.tsa_token IS '' OR NEW.tsa_token IS NULL
             OR {_changed(CHECKPOINT_COLUMNS)}
        BEGIN SELECT RAISE(ABORT, '{CHECKPOINT_MESSAGE}: UPDATE refused'); END;
        """,
        f"""
        CREATE TRIGGER IF NOT EXISTS audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
        BEGIN SELECT RAISE(ABORT, '{CHECKPOINT_MESSAGE}: DELETE refused'); END;
        """,
    ],
}
SQLITE_REMOVE = {
    "audit_logs": ["DROP TRIGGER IF EXISTS audit_logs_no_update;", "DROP TRIGGER IF EXISTS audit_logs_no_delete;"],
    "audit_checkpoints": [
        "DROP TRIGGER IF EXISTS audit_checkpoints_no_update;",
        "DROP TRIGGER IF EXISTS audit_checkpoints_no_delete;",
    ],
}


def _statements(connection, tables, *, install: bool):
    if connection.vendor == "postgresql":
        by_table = POSTGRES_INSTALL if install else POSTGRES_REMOVE
    elif connection.vendor == "sqlite":
        by_table = SQLITE_INSTALL if install else SQLITE_REMOVE
    else:
        raise NotImplementedError(f"no audit guards for {connection.vendor}")
    # Before migration audit.0006 there is no audit_purges table (SQLite checks a trigger's tables when any table
    # is renamed), so the guards installed by audit.0002 refuse every DELETE; from 0006 on, purged segments may go.
    purged = PURGED_THROUGH if "audit_purges" in connection.introspection.table_names() else "0"
    statements = [sql.replace("{purged_through}", purged) for table in tables for sql in by_table[table]]
    if install and "audit_logs" in tables:
        with connection.cursor() as cursor:
            have = {c.name for c in connection.introspection.get_table_description(cursor, "audit_logs")}
        for column in LATER_CONTENT_COLUMNS:
            if column not in have:  # a trigger must not name a column the table does not have yet
                statements = [
                    sql.replace(f", NEW.{column}", "").replace(f", OLD.{column}", "")
                    .replace(f" OR NEW.{column} IS NOT OLD.{column}", "")
                    for sql in statements
                ]  # fmt: skip
    return statements


def install(connection, tables=TABLES) -> None:
    """Install the guards of `tables` (both audit tables unless a migration that predates one says otherwise)."""
    with connection.cursor() as cursor:
        for sql in _statements(connection, tables, install=True):
            cursor.execute(sql)


def remove(connection, tables=TABLES) -> None:
    """Only for tests that must empty the tables (and the documented break-glass procedure)."""
    with connection.cursor() as cursor:
        for sql in _statements(connection, tables, install=False):
            cursor.execute(sql)
