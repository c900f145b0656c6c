"""Install the Supabase-like cluster roles, auth shim, extensions, app schema and RLS."""

from __future__ import annotations

from importlib import resources

import psycopg

#: SQL files run by :func:`install_schema`, in order. ``roles.sql`` is
#: cluster-level and idempotent; the others are per database.
SCHEMA_FILES: tuple[str, ...] = ("roles.sql", "auth.sql", "extensions.sql", "app.sql", "rls.sql")


def read_sql(name: str) -> str:
    """Text of one of the package's SQL files (``roles.sql``, ``app.sql``...)."""
    return resources.files(__package__).joinpath("sql", name).read_text(encoding="utf-8")


def ensure_autocommit(conn: psycopg.Connection) -> None:
    """The seed functions need autocommit (VACUUM, CREATE INDEX CONCURRENTLY)."""
    if not conn.autocommit:
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            raise ValueError("the seed connection must be idle (no open transaction)")
        conn.autocommit = True


def install_roles(conn: psycopg.Connection) -> None:
    """Create the cluster roles (idempotent): anon, authenticated, service_role,
    authenticator and a non-superuser ``postgres``."""
    ensure_autocommit(conn)
    conn.execute(read_sql("roles.sql"))


def install_schema(conn: psycopg.Connection) -> None:
    """Install roles, ``auth``, ``extensions``, the app schema and RLS.

    *conn* is a psycopg 3 connection as a superuser (``supabase_admin``) to the
    target database, which must be fresh (no app schema yet). Each file runs
    as one implicit transaction, so a failure leaves nothing half-installed.
    """
    ensure_autocommit(conn)
    for name in SCHEMA_FILES:
        try:
            conn.execute(read_sql(name))
        finally:
            # app.sql / rls.sql `set role postgres`; never leak it to the caller.
            conn.execute("reset role")
