"""Bring a seeded database's statistics into the state the checks read.

Statistics (pg_stat_*) are per database and are not copied by ``CREATE
DATABASE ... TEMPLATE``, so a cloned test database starts with none: no
``last_analyze``, no ``n_dead_tup``, no ``idx_scan``. :func:`settle` recreates
them: it vacuums and analyzes the tables, analyzes (only) the tables whose
autovacuum is off so their dead tuples show, leaves the never-analyzed table
alone, and runs a small read workload that scans every index at least once,
except the planted unused one.
"""

from __future__ import annotations

import logging
from typing import Iterable, Optional

import psycopg
from psycopg import sql

from pgrunbooks.names import qualified

from . import faults as _faults
from .schema import ensure_autocommit

log = logging.getLogger(__name__)

# Typical application reads, so pg_stat_statements has entries.
APP_QUERIES = (
    "select id, org_id, direction, status, duration, created_at from public.calls"
    " order by created_at desc limit 100",
    "select org_id, count(*) from public.calls where created_at > now() - interval '1 month' group by org_id",
    "select org_id, count(*) as count, count(*) filter (where direction = 'inbound') as inbound,"
    " count(*) filter (where direction = 'outbound') as outbound from public.sms_messages"
    " where created_at > now() - interval '7 days' group by org_id",
    "select org_id, sum(amount) as total, count(*) from public.invoices where status = 'paid' group by org_id",
    "select sum(amount) from public.billing_records where created_at > date_trunc('month', now())",
    "select org_id, count(*) from public.phone_numbers where assigned_to_org group by org_id",
    "select id, email, global_role from public.profiles where global_role = 'platform_admin'",
    "select count(*) as total_recordings, count(*) filter (where duration > 0) as with_duration"
    " from public.recordings where created_at > now() - interval '1 day'",
    "select org_id, count(*) as archive_count from public.archives group by org_id",
    "select metric_name, avg(metric_value) from public.db_metrics"
    " where recorded_at > now() - interval '1 day' group by metric_name",
)

# Literal probes for an empty table, by pg_type.typcategory.
_EMPTY_PROBE = {
    "S": "",
    "N": "0",
    "D": "2000-01-01",
    "B": "false",
    "U": "00000000-0000-0000-0000-000000000000",
}


def _planted(conn: psycopg.Connection, names: Iterable[str]) -> set[str]:
    """The faults whose statistics settle must preserve: those named, plus
    those found in the database (so a forgotten *faults* argument cannot
    vacuum the planted dead tuples away or scan the unused index)."""
    found = set(names)
    if conn.execute(
        "select to_regclass(%s) is not null", (_faults.NEVER_ANALYZED_TABLE,)
    ).fetchone()[0]:
        found.add("never_analyzed")
    if conn.execute(
        "select to_regclass(%s) is not null", (qualified("public", _faults.UNUSED_INDEX),)
    ).fetchone()[0]:
        found.add("unused_index")
    return found


def _user_tables(conn: psycopg.Connection) -> list[tuple[str, str, bool]]:
    """(schema, table, autovacuum_enabled) of every user table and materialized view (both are
    in pg_stat_user_tables, and a never-analyzed one would look like the planted fault)."""
    rows = conn.execute(
        """
        select n.nspname, c.relname,
               not coalesce('autovacuum_enabled=false' = any (c.reloptions), false)
        from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where c.relkind in ('r', 'p', 'm')
          and n.nspname not in ('pg_catalog', 'information_schema')
          and n.nspname !~ '^pg_toast' and n.nspname !~ '^pg_temp'
        order by n.nspname, c.relname
        """
    ).fetchall()
    return [(s, t, bool(a)) for s, t, a in rows]


def _reload_staging(conn: psycopg.Connection) -> None:
    """The nightly import job reloads the staging table: same rows, and the
    table's live-row count shows in pg_stat even in a fresh clone."""
    table = sql.Identifier(*_faults.NEVER_ANALYZED)
    with conn.transaction():
        conn.execute(
            sql.SQL("create temporary table _staging on commit drop as select * from {}").format(table)
        )
        conn.execute(sql.SQL("truncate {}").format(table))
        conn.execute(sql.SQL("insert into {} select * from _staging order by id").format(table))


def _plan_indexes(plan: dict) -> list[str]:
    names = []
    if "Index Name" in plan:
        names.append(plan["Index Name"])
    for child in plan.get("Plans", ()):
        names.extend(_plan_indexes(child))
    return names


def exercise_indexes(conn: psycopg.Connection, skip: Iterable[str] = (), schema: str = "public") -> list[str]:
    """Scan every valid, non-partial index of *schema* once (except *skip*).

    For each index: take a value of its leading column, force an index path
    (``enable_seqscan = off``), check with EXPLAIN that this index is the one
    chosen, and run the lookup. When the planner prefers another index with
    the same leading column (a duplicate), that one is dropped inside a
    transaction that is rolled back: scan counters survive the rollback.
    Returns the names of the indexes it could not scan.
    """
    skip = set(skip)
    indexes = conn.execute(
        """
        select ic.relname, n.nspname, t.relname, a.attname, format_type(a.atttypid, a.atttypmod),
               ty.typcategory
        from pg_index i
        join pg_class ic on ic.oid = i.indexrelid
        join pg_class t on t.oid = i.indrelid
        join pg_namespace n on n.oid = t.relnamespace
        join pg_attribute a on a.attrelid = t.oid and a.attnum = i.indkey[0]
        join pg_type ty on ty.oid = a.atttypid
        where n.nspname = %s and t.relkind = 'r' and i.indisvalid and i.indisready
          and i.indpred is null and i.indkey[0] <> 0
        order by t.relname, ic.relname
        """,
        (schema,),
    ).fetchall()
    constraint_backed = {
        r[0]
        for r in conn.execute(
            """
            select ic.relname from pg_constraint c join pg_class ic on ic.oid = c.conindid
            join pg_namespace n on n.oid = ic.relnamespace
            where c.contype in ('p', 'u', 'x') and n.nspname = %s
            """,
            (schema,),
        )
    }
    missed = []
    for index, nsp, table, column, coltype, category in indexes:
        if index in skip:
            continue
        tbl = sql.Identifier(nsp, table)
        col = sql.Identifier(column)
        with conn.transaction():
            # Fetch a probe value without touching any index.
            conn.execute("set local enable_indexscan = off")
            conn.execute("set local enable_indexonlyscan = off")
            conn.execute("set local enable_bitmapscan = off")
            row = conn.execute(
                sql.SQL("select {c}::text from {t} where {c} is not null limit 1").format(c=col, t=tbl)
            ).fetchone()
        value = row[0] if row else _EMPTY_PROBE.get(category)
        if value is None:
            missed.append(index)
            continue
        probe = sql.SQL("select 1 from {t} where {c} = cast(%s as {ty}) limit 1").format(
            t=tbl, c=col, ty=sql.SQL(coltype)
        )
        done = False
        with conn.transaction(force_rollback=True):
            conn.execute("set local enable_seqscan = off")
            conn.execute("set local enable_bitmapscan = off")
            conn.execute("set local lock_timeout = '5s'")
            for _ in range(5):
                plan = conn.execute(sql.SQL("explain (format json) ") + probe, (value,)).fetchone()[0]
                used = _plan_indexes(plan[0]["Plan"])
                if index in used:
                    conn.execute(probe, (value,)).fetchall()
                    done = True
                    break
                rivals = [u for u in used if u not in constraint_backed]
                if not rivals:
                    break
                conn.execute(sql.SQL("drop index {}").format(sql.Identifier(nsp, rivals[0])))
        if not done:
            missed.append(index)
    if missed:
        log.warning("settle could not scan indexes: %s", ", ".join(missed))
    return missed


def _app_workload(conn: psycopg.Connection) -> None:
    with conn.transaction():
        conn.execute("set local role postgres")
        for query in APP_QUERIES:
            conn.execute(query).fetchall()
    # One request through the API roles, as PostgREST would run it.
    member = conn.execute(
        "select user_id from public.org_users order by created_at, id limit 1"
    ).fetchone()
    if member is not None:
        with conn.transaction():
            conn.execute("set local role authenticated")
            conn.execute(
                "select set_config('request.jwt.claims', json_build_object('sub', %s::text,"
                " 'role', 'authenticated')::text, true)",
                (str(member[0]),),
            )
            conn.execute(
                "select id, direction, status, duration, created_at from public.calls"
                " order by created_at desc limit 20"
            ).fetchall()


def settle(conn: psycopg.Connection, faults: Optional[Iterable[str] | str] = ()) -> None:
    """Vacuum/analyze, then a small workload; see the module docstring.

    *conn*: superuser, autocommit. *faults*: the planted fault names (or a spec
    string); faults found in the database are honoured even if not named.
    """
    ensure_autocommit(conn)
    planted = _planted(conn, _faults.parse_faults(faults))
    # Flush this backend's pending counters first: ANALYZE subtracts unflushed
    # dead-tuple counts of its own backend from what it reports.
    conn.execute("select pg_stat_force_next_flush()")

    never_analyzed = _faults.NEVER_ANALYZED if "never_analyzed" in planted else None
    vacuum, analyze_only = [], []
    for schema, table, autovacuum in _user_tables(conn):
        if (schema, table) == never_analyzed:
            continue
        (vacuum if autovacuum else analyze_only).append(sql.Identifier(schema, table))
    if vacuum:
        conn.execute(sql.SQL("vacuum (analyze) {}").format(sql.SQL(", ").join(vacuum)))
    if analyze_only:
        # Tables with autovacuum off keep their dead tuples; ANALYZE reports
        # them in pg_stat_user_tables.n_dead_tup.
        conn.execute(sql.SQL("analyze {}").format(sql.SQL(", ").join(analyze_only)))
    if never_analyzed:
        _reload_staging(conn)

    skip = {_faults.UNUSED_INDEX} if "unused_index" in planted else set()
    for schema in ("public", "auth"):
        exercise_indexes(conn, skip=skip, schema=schema)
    _app_workload(conn)
    # Counters are flushed when the backend goes idle after this statement.
    conn.execute("select pg_stat_force_next_flush()")
