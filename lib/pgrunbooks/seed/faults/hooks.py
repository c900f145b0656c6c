"""The three faults that need a step one transaction of SQL cannot take.

Each hook gets the connection (superuser, autocommit), the fault and its bound values, and runs
the fault's SQL file itself at the point where it belongs.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from .model import Fault


def repack_with_free_space(conn: psycopg.Connection, fault: Fault, values: dict) -> None:
    """dead_tuples: ``VACUUM FULL`` cannot run inside a transaction.

    The table is rewritten with fillfactor 40 (then the option is reset), so the fault's updates
    stay on their page (HOT) and no page fills up: a full page is pruned by its next reader,
    which removes the dead tuples without a vacuum and would hide the fault.
    """
    table = sql.Identifier(*fault.names["table"])
    conn.execute(sql.SQL("alter table {} set (fillfactor = 40)").format(table))
    conn.execute(sql.SQL("vacuum full {}").format(table))
    conn.execute(sql.SQL("alter table {} reset (fillfactor)").format(table))
    fault.run_sql(conn, values)


def fail_a_concurrent_unique_index(conn: psycopg.Connection, fault: Fault, values: dict) -> None:
    """invalid_index: ``CREATE INDEX CONCURRENTLY`` cannot run inside a transaction, and only its
    failure leaves an INVALID index behind.

    The SQL file stores one recording twice (a webhook retry); the migration that adds
    uniqueness without locking then fails half way.
    """
    fault.run_sql(conn, values)
    index = sql.Identifier(*fault.names["index"])
    try:
        conn.execute(sql.SQL("create unique index concurrently {} on public.recordings (url)").format(index))
    except psycopg.errors.UniqueViolation:
        return
    raise RuntimeError(f"{values['index']} was built valid; the duplicate recording should have made it fail")


def create_role_once(conn: psycopg.Connection, fault: Fault, values: dict) -> None:
    """extra_superuser: ``CREATE ROLE`` has no ``IF NOT EXISTS`` and a role is shared by every
    database of the cluster, so two seeds at once could both try: the role catalog is locked,
    then the role created only when missing."""
    with conn.transaction():
        conn.execute("lock table pg_catalog.pg_authid in share row exclusive mode")
        if conn.execute("select to_regrole(%(role)s) is null", values).fetchone()[0]:
            fault.run_sql(conn, values)
