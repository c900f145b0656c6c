"""The history store: where snapshots, run findings and drills are kept, and its versioned schema.

The history database is named by a ``history`` target string, as ``pgrunbooks.targets`` reads one
(``local``, ``local:DB``, ``service:NAME``, ``env:VAR``, a DSN without password), or ``"target"``
for the audited database itself (only when it is writable and the operator asks for it). The
default, :data:`HISTORY_DEFAULT`, is a ``pgrunbooks_history`` database on the local sandbox: a
read-only production role is enough to capture, because nothing is written to production.

The schema ``pgrunbooks`` is built by the numbered files ``history/sql/NNN_name.sql``, applied in
order, each once, recorded in ``pgrunbooks.schema_version``. After every migration all privileges
on the schema are revoked from ``anon``, ``authenticated`` and ``public``: the Data API can never
reach the history, even when it lives in the target.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from typing import Any

import psycopg
from psycopg import sql

from pgrunbooks.db import MarkedCursor, connect as db_connect
from pgrunbooks.errors import PrivilegeError, UsageError
from pgrunbooks.redact import redact
from pgrunbooks.targets import Target, resolve

HISTORY_DEFAULT = "local:pgrunbooks_history"
#: ``history="target"``: keep the history in the audited database itself
IN_TARGET = "target"
SCHEMA = "pgrunbooks"
#: roles that must never reach the history (Supabase's API roles, and everyone)
API_ROLES = ("anon", "authenticated")
#: serialises concurrent migrations of one history database (any constant bigint will do)
_MIGRATION_LOCK = 0x70677262_68697374  # "pgrbhist"
_FILE_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    """One numbered DDL file of ``history/sql``."""

    version: int
    name: str
    text: str


def migrations() -> list[Migration]:
    """The package's migration files, in version order (a duplicate version is a packaging bug)."""
    found: dict[int, Migration] = {}
    for entry in resources.files(__package__).joinpath("sql").iterdir():
        match = _FILE_NAME.match(entry.name)
        if not match:
            continue
        version = int(match.group(1))
        if version in found:
            raise RuntimeError(f"two history migrations numbered {version:03d}: {found[version].name}, {match.group(2)}")
        found[version] = Migration(version, match.group(2), entry.read_text(encoding="utf-8"))
    return [found[v] for v in sorted(found)]


def target_key(target: str | Target) -> str:
    """The name a target's rows are stored under: its spec, redacted (``local``, ``service:prod``)."""
    spec = target.spec if isinstance(target, Target) else str(target)
    return redact(spec.strip())


def resolve_history(history: str = HISTORY_DEFAULT, *, target: str | Target | None = None) -> Target:
    """The :class:`Target` of the history database; ``"target"`` needs the audited ``target``."""
    if not isinstance(history, str) or not history.strip():
        raise UsageError("the history parameter is empty", hint=f"use {HISTORY_DEFAULT!r} (the default), a target name or 'target'")
    if history.strip() == IN_TARGET:
        if target is None:
            raise UsageError("history='target' keeps the history in the target, but no target was given")
        return target if isinstance(target, Target) else resolve(target)
    return resolve(history)


def connect(history: str = HISTORY_DEFAULT, *, target: str | Target | None = None,
            migrate_schema: bool = True) -> psycopg.Connection:
    """An autocommit connection to the history database, created (sandbox only) and migrated.

    On the local sandbox a missing database is created, owned by ``postgres``; elsewhere it must
    exist (create it once with ``createdb``). The connection is read-write: it is the one place
    pgrunbooks writes without an action, and it only ever writes to the ``pgrunbooks`` schema.
    """
    resolved = resolve_history(history, target=target)
    if resolved.kind == "local":
        ensure_local_database(resolved)
    session = db_connect(resolved, runbook="history", read_only=False, autocommit=True, statement_timeout="5min")
    if migrate_schema:
        try:
            migrate(session.conn)
        except (psycopg.errors.InsufficientPrivilege, psycopg.errors.ReadOnlySqlTransaction) as exc:
            session.close()
            raise PrivilegeError(
                f"cannot create or migrate the pgrunbooks schema in the history database {resolved}: "
                f"{exc.diag.message_primary}",
                hint=f"keep the history on the sandbox (history={HISTORY_DEFAULT!r}), or grant the role CREATE on "
                     "that database (and write access: not a standby, not a read-only role)",
            ) from None
        except BaseException:
            session.close()
            raise
    return session.conn


def ensure_local_database(resolved: Target) -> bool:
    """Create the sandbox database ``resolved`` names when it is missing; True when created."""
    from pgrunbooks.sandbox import ADMIN_USER, DEFAULT_USER, Sandbox

    name = resolved.dbname
    admin = Sandbox().status().conninfo("postgres", ADMIN_USER)
    with psycopg.connect(admin, autocommit=True, cursor_factory=MarkedCursor) as conn:
        if conn.execute("select 1 from pg_catalog.pg_database where datname = %s", (name,)).fetchone():
            return False
        try:
            conn.execute(sql.SQL("create database {} owner {}").format(sql.Identifier(name), sql.Identifier(DEFAULT_USER)))
        except psycopg.errors.DuplicateDatabase:  # created by a concurrent capture meanwhile
            return False
    return True


def migrate(conn: psycopg.Connection) -> list[int]:
    """Apply the migrations not yet recorded, in order, in one transaction; returns their versions.

    Idempotent: a second call applies nothing (and needs no CREATE privilege). Concurrent callers
    wait on an advisory lock, so a file is never applied twice. Whenever objects are created, every
    privilege of the API roles and ``public`` on the schema and its objects is revoked.
    """
    applied: list[int] = []
    with conn.transaction():
        conn.execute("select pg_catalog.pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        # Create only what is missing: CREATE … IF NOT EXISTS checks the CREATE privilege first, and a
        # role that only writes to an existing history has none.
        created = conn.execute("select pg_catalog.to_regclass('pgrunbooks.schema_version') is null").fetchone()[0]
        if created:
            conn.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(SCHEMA)))
            conn.execute(
                "create table pgrunbooks.schema_version ("
                " version integer primary key, name text not null,"
                " applied_at timestamptz not null default pg_catalog.now())"
            )
        done = {row[0] for row in conn.execute("select version from pgrunbooks.schema_version")}
        for migration in migrations():
            if migration.version in done:
                continue
            conn.execute(migration.text)
            conn.execute("insert into pgrunbooks.schema_version (version, name) values (%s, %s)",
                         (migration.version, migration.name))
            applied.append(migration.version)
        if created or applied:  # new objects: take from the API roles whatever default privileges gave them
            revoke_api_access(conn)
    return applied


def revoke_api_access(conn: psycopg.Connection) -> None:
    """Revoke everything on the schema, its tables, sequences and functions from the API roles and public."""
    present = [row[0] for row in conn.execute(
        "select rolname::text from pg_catalog.pg_roles where rolname = any(%s) order by rolname", (list(API_ROLES),))]
    grantees = [sql.Identifier(role) for role in present] + [sql.SQL("public")]
    for statement in _REVOKES:
        conn.execute(statement.format(sql.Identifier(SCHEMA), sql.SQL(", ").join(grantees)))


_REVOKES = (
    sql.SQL("revoke all on schema {} from {}"),
    sql.SQL("revoke all on all tables in schema {} from {}"),
    sql.SQL("revoke all on all sequences in schema {} from {}"),
    sql.SQL("revoke all on all functions in schema {} from {}"),
)


def schema_versions(conn: psycopg.Connection) -> list[dict[str, Any]]:
    """The applied migrations: version, name, applied_at."""
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        cur.execute("select version, name, applied_at from pgrunbooks.schema_version order by version")
        return cur.fetchall()


def record_drill(history: str = HISTORY_DEFAULT, *, kind: str, started_at: datetime, target: str, verdict: str,
                 rto_seconds: float | None, rpo_seconds: float | None, detail: dict[str, Any] | None = None) -> int:
    """Store one restore or PITR drill (shown by monthly/database_trends); returns its id.

    ``target`` is the source the backup came from (stored redacted); ``detail`` is any JSON
    (backup directory, row counts checked…) and must hold no secret.
    """
    conn = connect(history)
    try:
        row = conn.execute(
            "insert into pgrunbooks.drills (kind, started_at, target, verdict, rto_seconds, rpo_seconds, detail)"
            " values (%s, %s, %s, %s, %s, %s, %s::jsonb) returning id",
            (kind, started_at, target_key(target), verdict, rto_seconds, rpo_seconds,
             json.dumps(detail or {}, default=str)),
        ).fetchone()
        return int(row[0])
    finally:
        conn.close()
