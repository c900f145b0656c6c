"""Load deterministic data into the VictorySync schema.

Every table is filled by one ``insert ... select ... from generate_series(...)``
statement that runs inside the server (:mod:`.rows`), so the same *scale* and
*anchor* always give the same rows, on any PostgreSQL version. Timestamps are
``anchor - offset`` with offsets spread over the two years before the anchor,
skewed towards the recent past, so the guide's archive thresholds (calls older
than 1 year, SMS older than 6 months) have rows on both sides.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Optional

import psycopg
from psycopg import sql

from .rows import EMPTY_TABLES, STEPS
from .schema import ensure_autocommit

#: ``progress(step, rows, seconds)``: called after each table is loaded (step =
#: table name, rows inserted), then for "constraints" and "indexes" (rows = how
#: many were built) and "analyze"; ``seed`` adds "faults" and "settle".
Progress = Callable[[str, int, float], None]


@dataclass(frozen=True)
class Sizes:
    """Row targets for one scale. Rows grow linearly with the scale."""

    orgs: int
    users: int
    phones: int
    assigned_phones: int
    calls: int
    sms: int
    billing: int
    archives: int
    metrics: int

    @classmethod
    def for_scale(cls, scale: float) -> "Sizes":
        if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 0):
            raise ValueError(f"scale must be a positive number, not {scale!r}")
        orgs = max(3, round(20 * scale))
        users = max(10, round(300 * scale))
        phones = max(3 * orgs, round(600 * scale))
        return cls(
            orgs=orgs,
            users=users,
            phones=phones,
            assigned_phones=int(phones * 0.85),
            calls=round(50_000 * scale),
            sms=round(50_000 * scale),
            billing=round(6_000 * scale),
            archives=round(2_000 * scale),
            metrics=round(40_000 * scale),
        )


def default_anchor() -> datetime:
    """The start of the current UTC day."""
    return datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)


def normalize_anchor(anchor: Optional[datetime]) -> datetime:
    if anchor is None:
        return default_anchor()
    if not isinstance(anchor, datetime):
        raise TypeError(f"anchor must be a datetime, not {type(anchor).__name__}")
    if anchor.tzinfo is None:  # naive: taken as UTC
        anchor = anchor.replace(tzinfo=timezone.utc)
    return anchor


def _drop_constraints(conn: psycopg.Connection, tables: list[str]) -> list[sql.Composable]:
    """Drop the primary key, unique and foreign key constraints on (or pointing
    at) *tables*; return the statements that re-add them, keys first.

    Re-adding a foreign key makes PostgreSQL validate every row, so the
    generated data is checked for consistency at the end of the load."""
    rows = conn.execute(
        """
        select n.nspname, r.relname, c.conname, c.contype, pg_get_constraintdef(c.oid)
        from pg_constraint c
        join pg_class r on r.oid = c.conrelid
        join pg_namespace n on n.oid = r.relnamespace
        where c.contype in ('p', 'u', 'f')
          and (c.conrelid = any(%s::regclass[]) or c.confrelid = any(%s::regclass[]))
        order by c.contype = 'f' desc, c.oid
        """,
        (tables, tables),
    ).fetchall()
    readd = []
    for nsp, rel, name, _, definition in rows:
        table, constraint = sql.Identifier(nsp, rel), sql.Identifier(name)
        conn.execute(sql.SQL("alter table {} drop constraint {}").format(table, constraint))
        readd.append(
            sql.SQL("alter table {} add constraint {} ").format(table, constraint) + sql.SQL(definition)
        )
    return readd[::-1]


def _drop_secondary_indexes(conn: psycopg.Connection, tables: list[str]) -> list[str]:
    """Drop the indexes of *tables* that back no constraint; return their definitions."""
    rows = conn.execute(
        """
        select n.nspname, c.relname, pg_get_indexdef(i.indexrelid)
        from pg_index i
        join pg_class c on c.oid = i.indexrelid
        join pg_namespace n on n.oid = c.relnamespace
        where i.indrelid = any(%s::regclass[])
          and not exists (select 1 from pg_constraint k where k.conindid = i.indexrelid)
        order by i.indexrelid
        """,
        (tables,),
    ).fetchall()
    for schema, index, _ in rows:
        conn.execute(sql.SQL("drop index {}").format(sql.Identifier(schema, index)))
    return [definition for *_, definition in rows]


def load_data(
    conn: psycopg.Connection,
    *,
    scale: float = 1.0,
    anchor: Optional[datetime] = None,
    progress: Optional[Progress] = None,
) -> dict[str, int]:
    """Fill the (empty) app tables and ``auth.users``; return rows per table.

    *conn* is a superuser connection (autocommit) to a database where
    :func:`install_schema` ran. *scale* 1.0 gives ~50k calls and ~50k SMS;
    rows grow linearly (scale 20 gives 1M of each). *anchor* (default: the
    start of the current UTC day) is the instant the data ends at.
    """
    ensure_autocommit(conn)
    sizes = Sizes.for_scale(scale)
    params = {
        "anchor": normalize_anchor(anchor),
        "orgs": sizes.orgs,
        "users": sizes.users,
        "phones": sizes.phones,
        "pa": sizes.assigned_phones,
        "calls": sizes.calls,
        "sms": sizes.sms,
        "billing": sizes.billing,
        "archives": sizes.archives,
        "metrics": sizes.metrics,
    }
    counts: dict[str, int] = {}
    tables = [t if "." in t else "public." + t for t, _ in STEPS]
    with conn.transaction():
        # Dates are cut in UTC whatever the session's time zone, so the rows
        # do not depend on who seeds.
        conn.execute("set local timezone = 'UTC'")
        conn.execute("set local synchronous_commit = off")
        # Like pg_restore: load the rows first, then build the indexes and add
        # (and so validate) the keys and foreign keys, rather than maintaining
        # them row by row (about three times faster at a million rows).
        conn.execute("set local maintenance_work_mem = '256MB'")
        deferred = _drop_secondary_indexes(conn, tables)
        deferred_constraints = _drop_constraints(conn, tables)
        for table, statement in STEPS:
            started = time.monotonic()
            cur = conn.execute(statement, params)
            counts[table] = cur.rowcount
            if progress is not None:
                progress(table, cur.rowcount, time.monotonic() - started)
        started = time.monotonic()
        for statement in deferred_constraints:
            conn.execute(statement)
        if progress is not None:
            progress("constraints", len(deferred_constraints), time.monotonic() - started)
        started = time.monotonic()
        for definition in deferred:
            conn.execute(definition)
        if progress is not None:
            progress("indexes", len(deferred), time.monotonic() - started)
        conn.execute(
            "select setval('public.db_metrics_id_seq', greatest(1, coalesce(max(id), 1)), max(id) is not null)"
            " from public.db_metrics"
        )
    for table in EMPTY_TABLES:
        counts[table] = 0
    started = time.monotonic()
    conn.execute("analyze")
    if progress is not None:
        progress("analyze", sum(counts.values()), time.monotonic() - started)
    return counts
