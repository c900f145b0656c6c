"""One snapshot of a target: metrics, table sizes and ``pg_stat_statements``, stored in the history.

The target is only read (one read-only transaction, so every figure comes from the same
moment); ``pg_stat_statements`` is **never reset**: the next snapshot's deltas are computed from
the cumulative counters (:mod:`pgrunbooks.history.series`), which is why each snapshot also keeps
``pg_postmaster_start_time()`` and ``pg_stat_statements_info.stats_reset``.

One snapshot per target and UTC day: a second capture the same day **replaces** the first (the
latest of the day wins, its tables and statements with it), so a re-run after a failure or a
manual run next to the scheduled one never doubles a day.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any

import psycopg
from psycopg import sql

from pgrunbooks import pgss
from pgrunbooks.db import QUERY_MARKER_PREFIX, Session
from pgrunbooks.findings import Finding, Severity
from pgrunbooks.history.store import target_key
from pgrunbooks.redact import redact

#: at most this many relations per snapshot (the largest): bounds the work on a catalog of thousands
DEFAULT_TABLE_LIMIT = 200

METRICS_SQL = """
select pg_catalog.now() as taken_at,
       current_setting('server_version_num')::int as server_version,
       current_database()::text as database_name,
       pg_catalog.pg_postmaster_start_time() as postmaster_start,
       pg_catalog.pg_database_size(db.oid) as database_bytes,
       (select sum(pg_catalog.pg_database_size(o.oid))
        from pg_catalog.pg_database o
        where o.datallowconn
          and (pg_catalog.has_database_privilege(o.oid, 'connect')
               or pg_catalog.pg_has_role('pg_read_all_stats', 'usage')))::bigint as cluster_bytes,
       (select count(*) from pg_catalog.pg_stat_activity a where a.backend_type = 'client backend')::int
         as connections,
       current_setting('max_connections')::int as max_connections,
       d.xact_commit, d.xact_rollback, d.blks_read, d.blks_hit,
       d.stats_reset as database_stats_reset,
       d.blks_hit::float8 / nullif(d.blks_hit + d.blks_read, 0) as cache_hit_ratio,
       (select sum(t.n_live_tup) from pg_catalog.pg_stat_user_tables t)::bigint as live_tuples,
       (select sum(t.n_dead_tup) from pg_catalog.pg_stat_user_tables t)::bigint as dead_tuples,
       case when pg_catalog.pg_is_in_recovery() then null else pg_catalog.pg_current_wal_lsn() end as wal_lsn,
       (select w.wal_bytes from pg_catalog.pg_stat_wal w) as wal_bytes,
       pg_catalog.age(db.datfrozenxid) as xid_age,
       (select max(pg_catalog.age(o.datfrozenxid)) from pg_catalog.pg_database o)::int as cluster_xid_age
from pg_catalog.pg_database db
join pg_catalog.pg_stat_database d on d.datid = db.oid
where db.datname = current_database()
"""

TABLES_SQL = """
select pg_catalog.format('%%I.%%I', n.nspname, c.relname) as relation,
       pg_catalog.pg_total_relation_size(c.oid) as total_bytes,
       pg_catalog.pg_relation_size(c.oid) as table_bytes,
       pg_catalog.pg_indexes_size(c.oid) as index_bytes,
       s.n_live_tup as live_tuples,
       s.n_dead_tup as dead_tuples
from pg_catalog.pg_class c
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
left join pg_catalog.pg_stat_all_tables s on s.relid = c.oid
where c.relkind in ('r', 'm', 'p')
  and n.nspname not in ('pg_catalog', 'information_schema')
  and n.nspname !~ '^pg_toast'
order by total_bytes desc, relation
limit %(limit)s
"""

# Our own statements are left out (every pgrunbooks statement carries the marker); nested and
# top-level entries of one query are summed. Only this database's entries: a history is per target.
STATEMENTS_SQL = sql.SQL("""
select s.queryid, s.userid, s.dbid,
       sum(s.calls)::bigint as calls,
       sum(s.total_exec_time)::float8 as total_exec_time,
       sum(s.rows)::bigint as rows,
       sum(s.shared_blks_hit)::bigint as shared_blks_hit,
       sum(s.shared_blks_read)::bigint as shared_blks_read,
       sum(s.shared_blks_dirtied)::bigint as shared_blks_dirtied,
       sum(s.shared_blks_written)::bigint as shared_blks_written,
       sum(s.temp_blks_read)::bigint as temp_blks_read,
       sum(s.temp_blks_written)::bigint as temp_blks_written,
       {stats_since} as stats_since,
       pg_catalog.left(pg_catalog.min(s.query), 2000) as query
from {pgss} s
where s.queryid is not null
  and s.dbid = (select d.oid from pg_catalog.pg_database d where d.datname = current_database())
  and pg_catalog.strpos(s.query, %(marker)s) = 0
group by s.queryid, s.userid, s.dbid
order by s.queryid, s.userid, s.dbid
""")


@dataclass
class Measurement:
    """What one capture read from the target (nothing stored yet)."""

    metrics: dict[str, Any]
    tables: list[dict[str, Any]]
    statements: list[dict[str, Any]]
    #: pg_stat_statements_info.stats_reset: when every entry last restarted from zero
    stats_reset: datetime | None = None
    #: why statements are missing (extension absent…), else None
    statements_skipped: str | None = None
    seconds: float = 0.0


@dataclass(frozen=True)
class Snapshot:
    """A stored snapshot: its id and day, and what it holds."""

    id: int
    target: str
    day: date
    taken_at: datetime
    tables: int
    statements: int
    replaced: bool
    statements_skipped: str | None = None
    read_seconds: float = 0.0
    write_seconds: float = 0.0


def measure(session: Session, *, table_limit: int = DEFAULT_TABLE_LIMIT) -> Measurement:
    """Read the metrics, table sizes and statement counters in one read-only transaction."""
    started = time.monotonic()
    with session.transaction() as cur:
        cur.execute(METRICS_SQL)
        metrics = cur.fetchone()
        cur.execute(TABLES_SQL, {"limit": table_limit})
        tables = cur.fetchall()
        statements, stats_reset, skipped = _statements(cur)
    return Measurement(dict(metrics), tables, statements, stats_reset, skipped, time.monotonic() - started)


def _statements(cur: psycopg.Cursor) -> tuple[list[dict[str, Any]], datetime | None, str | None]:
    cur.execute(pgss.LOCATE_SQL)
    ext = cur.fetchone()
    if ext is None:
        return [], None, pgss.NOT_INSTALLED
    found = pgss.Pgss.from_row(ext)
    if not found.usable:
        return [], None, found.unusable_reason
    stats_since = sql.SQL("max(s.stats_since)") if "stats_since" in found.columns else sql.SQL("null::timestamptz")
    cur.execute(STATEMENTS_SQL.format(pgss=found.relation(), stats_since=stats_since),
                {"marker": QUERY_MARKER_PREFIX})
    rows = cur.fetchall()
    cur.execute(sql.SQL("select i.stats_reset from {} i").format(found.relation("pg_stat_statements_info")))
    info = cur.fetchone()
    return rows, (info or {}).get("stats_reset"), None


def store_snapshot(conn: psycopg.Connection, target: str, measurement: Measurement, *,
                   day: date | None = None, synthetic: bool = False) -> Snapshot:
    """Write ``measurement`` as the snapshot of ``target`` for ``day`` (default: its UTC day), replacing one."""
    started = time.monotonic()
    m = measurement.metrics
    key = target_key(target)
    day = day or m["taken_at"].astimezone(timezone.utc).date()
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("delete from pgrunbooks.snapshots where target = %s and day = %s", (key, day))
        replaced = cur.rowcount > 0
        cur.execute(
            "insert into pgrunbooks.snapshots (target, day, taken_at, server_version, database_name,"
            " postmaster_start, stats_reset, database_stats_reset, database_bytes, cluster_bytes, connections,"
            " max_connections, xact_commit, xact_rollback, blks_read, blks_hit, cache_hit_ratio, live_tuples,"
            " dead_tuples, wal_lsn, wal_bytes, xid_age, cluster_xid_age, statements, synthetic)"
            " values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
            " %s, %s) returning id",
            (key, day, m["taken_at"], m["server_version"], m["database_name"], m["postmaster_start"],
             measurement.stats_reset, m.get("database_stats_reset"), m["database_bytes"], m.get("cluster_bytes"),
             m["connections"], m["max_connections"], m.get("xact_commit"), m.get("xact_rollback"),
             m.get("blks_read"), m.get("blks_hit"), m.get("cache_hit_ratio"), m.get("live_tuples"),
             m.get("dead_tuples"), m.get("wal_lsn"), m.get("wal_bytes"), m.get("xid_age"),
             m.get("cluster_xid_age"), len(measurement.statements), synthetic),
        )
        snapshot_id = cur.fetchone()[0]
        write_children(cur, snapshot_id, key, measurement.tables, measurement.statements)
    return Snapshot(snapshot_id, key, day, m["taken_at"], len(measurement.tables), len(measurement.statements),
                    replaced, measurement.statements_skipped, measurement.seconds, time.monotonic() - started)


TABLE_COLUMNS = ("snapshot_id", "relation", "total_bytes", "table_bytes", "index_bytes", "live_tuples",
                 "dead_tuples")
STATEMENT_COLUMNS = ("snapshot_id", "queryid", "userid", "dbid", "calls", "total_exec_time", "rows",
                     "shared_blks_hit", "shared_blks_read", "shared_blks_dirtied", "shared_blks_written",
                     "temp_blks_read", "temp_blks_written", "stats_since")


def copy_rows(cur: psycopg.Cursor, table: str, columns: tuple[str, ...], rows) -> None:
    """``COPY pgrunbooks.<table> (columns) FROM STDIN`` with ``rows``: thousands of rows in milliseconds."""
    statement = sql.SQL("copy {} ({}) from stdin").format(
        sql.Identifier("pgrunbooks", table), sql.SQL(", ").join(map(sql.Identifier, columns)))
    with cur.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)


def write_children(cur: psycopg.Cursor, snapshot_id: int, key: str, tables: list[dict[str, Any]],
                   statements: list[dict[str, Any]]) -> None:
    """Insert a snapshot's table sizes, statement counters and (new or changed) query texts."""
    copy_rows(cur, "table_sizes", TABLE_COLUMNS,
              ((snapshot_id, *(t.get(c) for c in TABLE_COLUMNS[1:])) for t in tables))
    copy_rows(cur, "statements", STATEMENT_COLUMNS,
              ((snapshot_id, *(s.get(c) for c in STATEMENT_COLUMNS[1:])) for s in statements))
    texts = {s["queryid"]: s["query"] for s in statements if s.get("query")}
    if texts:
        cur.execute(
            "insert into pgrunbooks.statement_texts (target, queryid, query)"
            " select %s, t.queryid, t.query from unnest(%s::bigint[], %s::text[]) as t(queryid, query)"
            " on conflict (target, queryid) do update set query = excluded.query"
            " where pgrunbooks.statement_texts.query is distinct from excluded.query",
            (key, list(texts), list(texts.values())),
        )


def capture(session: Session, history: psycopg.Connection, *, target: str | None = None,
            day: date | None = None, table_limit: int = DEFAULT_TABLE_LIMIT) -> Snapshot:
    """Measure the target of ``session`` (read-only) and store the day's snapshot in ``history``."""
    measurement = measure(session, table_limit=table_limit)
    return store_snapshot(history, target or session.target.spec, measurement, day=day)


def findings(snapshot: Snapshot, history_name: str) -> list[Finding]:
    """What a capture reports: the snapshot stored (ok), and statements skipped with the reason."""
    out = [Finding(
        "capture_metrics", Severity.OK, "Metrics snapshot stored", "snapshot",
        value=str(snapshot.day),
        detail=f"{snapshot.tables} relations and {snapshot.statements} statements of {snapshot.target} "
               f"stored in {redact(history_name)} for {snapshot.day}"
               + (" (replacing the earlier snapshot of that day)" if snapshot.replaced else ""),
    )]
    if snapshot.statements_skipped:
        out.append(Finding("capture_metrics.statements", Severity.SKIPPED, "Statement statistics not captured",
                           "pg_stat_statements", detail=snapshot.statements_skipped,
                           remediation="create extension pg_stat_statements; (it must be in shared_preload_libraries)"))
    return out
