"""Triggers that make audit_logs append-only on PostgreSQL and SQLite (see docs/audit.md for their limits).

Allowed: INSERT, and the one UPDATE that seals an unsealed row (seq NULL -> set) without touching its
content. Refused: every other UPDATE, DELETE, and (PostgreSQL) TRUNCATE.
"""

CONTENT_COLUMNS = (
    "ts", "actor_type", "actor_id", "action", "object_type", "object_id", "payload", "payload_sha256",
    "tenant_id", "request_id", "client_ip", "version",
)  # fmt: skip
MESSAGE = "audit_logs is append-only"

_old = ", ".join(f"OLD.{c}" for c in CONTENT_COLUMNS)
_new = ", ".join(f"NEW.{c}" for c in CONTENT_COLUMNS)

POSTGRES_INSTALL = [
    f"""
    CREATE OR REPLACE FUNCTION audit_logs_guard() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'UPDATE' AND OLD.seq IS NULL AND NEW.seq IS NOT NULL
           AND ROW({_new}) IS NOT DISTINCT FROM ROW({_old}) THEN
            RETURN NEW;
        END IF;
        RAISE EXCEPTION '{MESSAGE}: % refused', TG_OP USING ERRCODE = '42501';
    END $$;
    """,
    "CREATE OR REPLACE TRIGGER audit_logs_guard_rows BEFORE UPDATE OR DELETE ON audit_logs "
    "FOR EACH ROW EXECUTE FUNCTION audit_logs_guard();",
    "CREATE OR REPLACE TRIGGER audit_logs_guard_truncate BEFORE TRUNCATE ON audit_logs "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_logs_guard();",
]
POSTGRES_REMOVE = [
    "DROP TRIGGER IF EXISTS audit_logs_guard_rows ON audit_logs;",
    "DROP TRIGGER IF EXISTS audit_logs_guard_truncate ON audit_logs;",
    "DROP FUNCTION IF EXISTS audit_logs_guard();",
]

_changed = " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in CONTENT_COLUMNS)
SQLITE_INSTALL = [
    f"""
    CREATE TRIGGER IF NOT EXISTS audit_logs_no_update BEFORE UPDATE ON audit_logs
    WHEN OLD.seq IS NOT NULL OR NEW.seq IS NULL OR {_changed}
    BEGIN SELECT RAISE(ABORT, '{MESSAGE}: UPDATE refused'); END;
    """,
    f"""
    CREATE TRIGGER IF NOT EXISTS audit_logs_no_delete BEFORE DELETE ON audit_logs
    BEGIN SELECT RAISE(ABORT, '{MESSAGE}: DELETE refused'); END;
    """,
]
SQLITE_REMOVE = [
    "DROP TRIGGER IF EXISTS audit_logs_no_update;",
    "DROP TRIGGER IF EXISTS audit_logs_no_delete;",
]


def _statements(connection, *, install: bool):
    if connection.vendor == "postgresql":
        return POSTGRES_INSTALL if install else POSTGRES_REMOVE
    if connection.vendor == "sqlite":
        return SQLITE_INSTALL if install else SQLITE_REMOVE
    raise NotImplementedError(f"no audit guards for {connection.vendor}")


def install(connection) -> None:
    with connection.cursor() as cursor:
        for sql in _statements(connection, install=True):
            cursor.execute(sql)


def remove(connection) -> None:
    """Only for tests that must empty the table (and the documented break-glass procedure)."""
    with connection.cursor() as cursor:
        for sql in _statements(connection, install=False):
            cursor.execute(sql)
