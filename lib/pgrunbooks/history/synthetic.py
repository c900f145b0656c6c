"""Thirteen months of deterministic synthetic history for the sandbox (demo, nbval, onboarding).

One snapshot a day, ending the day before ``end`` (default: today, UTC), each marked
``synthetic``: sizes growing roughly linearly towards the target's current sizes (so today's real
capture continues the line), with noise from a fixed seed, a weekly rhythm in the statement
counters, and three events a real history has: a crash (statistics lost, the postmaster
stays), a ``pg_stat_statements_reset()`` and a clean restart (statistics kept); and one suite
run a day with findings that appear, persist and get fixed. The same arguments always write the
same rows; days that already hold a snapshot (real or synthetic) are left alone.
"""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

import psycopg

from pgrunbooks.history.capture import STATEMENT_COLUMNS, TABLE_COLUMNS, Measurement, copy_rows
from pgrunbooks.history.store import target_key

SYNTHETIC_DAYS = 396  # 13 months
SEED = 15
#: the suite name of the synthetic runs (no real suite has it, so no run-to-run diff meets them)
SYNTHETIC_SUITE = "synthetic-daily"
#: where the events fall, in days before ``end``
CRASH_DAYS_AGO, RESET_DAYS_AGO, CLEAN_RESTART_DAYS_AGO = 250, 120, 60

# (queryid, query, calls per day, mean ms, rows per call): the application's usual statements.
STATEMENTS: tuple[tuple[int, str, float, float, float], ...] = (
    (7150000000000000001, "select * from public.calls where org_id = $1 order by created_at desc limit $2", 42000, 0.9, 50),
    (7150000000000000002, "insert into public.calls (org_id, phone_number_id, direction, from_number, to_number, status, duration) values ($1, $2, $3, $4, $5, $6, $7)", 9000, 0.35, 1),
    (7150000000000000003, "select * from public.sms_messages where org_id = $1 and created_at > $2 order by created_at", 15000, 1.4, 30),
    (7150000000000000004, "insert into public.sms_messages (org_id, phone_number_id, direction, from_number, to_number, body, status) values ($1, $2, $3, $4, $5, $6, $7)", 8000, 0.3, 1),
    (7150000000000000005, "select o.id, o.name, count(c.id) from public.organizations o left join public.calls c on c.org_id = o.id where c.created_at >= $1 group by o.id, o.name", 40, 220.0, 20),
    (7150000000000000006, "select sum(amount) from public.billing_records where org_id = $1 and status = $2", 1200, 4.5, 1),
    (7150000000000000007, "update public.organizations set updated_at = now() where id = $1", 600, 0.2, 1),
    (7150000000000000008, "select * from public.org_users where user_id = $1", 30000, 0.05, 2),
)

# Used when no measurement of the target is given: about the scale-1 sandbox.
DEFAULT_DATABASE_BYTES = 55_000_000
DEFAULT_TABLES: dict[str, int] = {
    "public.calls": 16_000_000, "public.sms_messages": 17_000_000, "public.db_metrics": 4_000_000,
    "public.billing_records": 1_500_000, "public.recordings": 1_200_000, "public.invoices": 900_000,
    "public.archives": 700_000, "public.phone_numbers": 200_000, "public.org_users": 120_000,
    "public.profiles": 100_000, "public.organizations": 60_000, "auth.users": 150_000,
}


def seed_synthetic(history: psycopg.Connection, target: str = "local", *, current: Measurement | None = None,
                   end: date | None = None, days: int = SYNTHETIC_DAYS, seed: int = SEED) -> int:
    """Write ``days`` daily synthetic snapshots of ``target`` ending the day before ``end``; returns how
    many were written (days already holding a snapshot are skipped)."""
    key = target_key(target)
    end = end or datetime.now(timezone.utc).date()
    first = end - timedelta(days=days)
    plan = _plan(current, first, days, seed)
    taken = {row[0] for row in history.execute(
        "select day from pgrunbooks.snapshots where target = %s and day >= %s and day < %s", (key, first, end))}
    todo = [snap for snap in plan if snap["metrics"]["day"] not in taken]
    if not todo:
        return 0
    with history.transaction(), history.cursor() as cur:
        cur.execute("select pg_catalog.nextval('pgrunbooks.snapshots_id_seq') from pg_catalog.generate_series(1, %s)",
                    (len(todo),))
        ids = [row[0] for row in cur.fetchall()]
        copy_rows(cur, "snapshots", _SNAPSHOT_COLUMNS, [
            (sid, key, *(snap["metrics"][c] for c in _SNAPSHOT_COLUMNS[2:-2]), len(snap["statements"]), True)
            for sid, snap in zip(ids, todo)])
        copy_rows(cur, "table_sizes", TABLE_COLUMNS, [
            (sid, *(t[c] for c in TABLE_COLUMNS[1:])) for sid, snap in zip(ids, todo) for t in snap["tables"]])
        copy_rows(cur, "statements", STATEMENT_COLUMNS, [
            (sid, *(st[c] for c in STATEMENT_COLUMNS[1:])) for sid, snap in zip(ids, todo) for st in snap["statements"]])
        cur.execute(
            "insert into pgrunbooks.statement_texts (target, queryid, query)"
            " select %s, t.queryid, t.query from unnest(%s::bigint[], %s::text[]) as t(queryid, query)"
            " on conflict (target, queryid) do nothing",
            (key, [q[0] for q in STATEMENTS], [q[1] for q in STATEMENTS]),
        )
        _write_runs(cur, key, [(snap["metrics"]["day"], snap["findings"]) for snap in todo])
        copy_rows(cur, "drills", ("kind", "started_at", "target", "verdict", "rto_seconds", "rpo_seconds", "detail"),
                  [(*snap["drill"][:1], _at(snap["metrics"]["day"], 4), key, *snap["drill"][1:])
                   for snap in todo if snap["drill"]])
    return len(todo)


def _write_runs(cur: psycopg.Cursor, key: str, days: list[tuple[date, list[tuple[str, str, str, str]]]]) -> None:
    """One synthetic suite run a day with its findings (suite ``SYNTHETIC_SUITE``: never compared with a real one)."""
    cur.execute("select pg_catalog.nextval('pgrunbooks.runs_id_seq') from pg_catalog.generate_series(1, %s)",
                (len(days),))
    ids = [row[0] for row in cur.fetchall()]
    copy_rows(cur, "runs", ("id", "suite", "target", "started_at"),
              [(run_id, SYNTHETIC_SUITE, key, _at(day, 6)) for run_id, (day, _) in zip(ids, days)])
    copy_rows(cur, "run_findings", ("run_id", "key", "check_id", "severity", "object", "title"),
              [(run_id, f"{check}:{obj}" if obj else check, check, severity, obj or None, title)
               for run_id, (_, found) in zip(ids, days) for check, severity, obj, title in found])


def _drill(day: date, rng: random.Random) -> tuple | None:
    """A monthly restore drill on the 1st (kind, verdict, RTO s, RPO s, detail); one in six fails."""
    if day.day != 1:
        return None
    failed = rng.random() < 1 / 6
    detail = '{"synthetic": true, "reason": "row counts differ from the manifest"}' if failed else '{"synthetic": true}'
    return ("restore", "fail" if failed else "pass", round(40 + 25 * rng.random(), 1), round(300 * rng.random(), 1),
            detail)


def _findings(i: int, days: int, rng: random.Random) -> list[tuple[str, str, str, str]]:
    """The findings of the synthetic run ``i`` days in: problems that appear, persist and get fixed."""
    found = [("unused_indexes", "info", "public.calls_phone_number_id_idx", "Unused index")]
    if 30 <= i < 200:
        found.append(("dead_tuples", "warning", "public.db_metrics", "Dead tuples"))
    if days - CRASH_DAYS_AGO - 2 <= i <= days - CRASH_DAYS_AGO:
        found.append(("connections", "critical", "", "Connections"))
    if i >= days - 90:
        found.append(("table_bloat", "warning", "public.sms_messages", "Table bloat"))
    if rng.random() < 0.2:
        found.append(("slow_statements", "warning", f"queryid:{STATEMENTS[4][0]}", "Slow statements"))
    return found


_SNAPSHOT_COLUMNS = (
    "id", "target", "day", "taken_at", "server_version", "database_name", "postmaster_start", "stats_reset",
    "database_bytes", "cluster_bytes", "connections", "max_connections", "xact_commit", "xact_rollback",
    "blks_read", "blks_hit", "cache_hit_ratio", "live_tuples", "dead_tuples", "xid_age", "cluster_xid_age",
    "statements", "synthetic",
)
def _plan(current: Measurement | None, first: date, days: int, seed: int) -> list[dict[str, Any]]:
    """Every synthetic snapshot, computed in full whatever is skipped later (so rows never depend on it)."""
    rng = random.Random(seed)
    final_db = (current.metrics["database_bytes"] if current else DEFAULT_DATABASE_BYTES)
    final_cluster = (current.metrics.get("cluster_bytes") if current else None) or int(final_db * 1.25)
    final_tables = ({t["relation"]: t["total_bytes"] for t in current.tables} if current else DEFAULT_TABLES)
    version = current.metrics["server_version"] if current else 180000
    database_name = current.metrics["database_name"] if current else "victorysync"
    # each table starts at its own fraction of today's size: the big ones grew most
    start_fraction = {name: 0.35 + 0.5 * rng.random() for name in sorted(final_tables)}
    crash, reset, restart = (first + timedelta(days=days - n) for n in
                             (CRASH_DAYS_AGO, RESET_DAYS_AGO, CLEAN_RESTART_DAYS_AGO))
    postmaster = _at(first - timedelta(days=30), 3)
    stats_reset = postmaster
    counters = {q[0]: dict.fromkeys(("calls", "time", "rows"), 0.0) for q in STATEMENTS}
    xact = 0
    plan = []
    for i in range(days):
        day = first + timedelta(days=i)
        progress = (i + 1) / days
        if day == crash:  # a backend crashed: shared memory re-initialised, the postmaster stays
            stats_reset = _at(day, 1)
            counters = {k: dict.fromkeys(v, 0.0) for k, v in counters.items()}
        elif day == reset:  # someone ran pg_stat_statements_reset()
            stats_reset = _at(day, 1)
            counters = {k: dict.fromkeys(v, 0.0) for k, v in counters.items()}
        elif day == restart:  # a clean restart: counters saved and reloaded
            postmaster = _at(day, 1)
        grow = 0.55 + 0.45 * progress
        noise = 1 + rng.gauss(0, 0.004)
        tables = []
        for name in sorted(final_tables):
            fraction = start_fraction[name] + (1 - start_fraction[name]) * progress
            total = int(final_tables[name] * fraction * (1 + rng.gauss(0, 0.003)))
            tables.append({"relation": name, "total_bytes": total, "table_bytes": int(total * 0.7),
                           "index_bytes": total - int(total * 0.7), "live_tuples": total // 120,
                           "dead_tuples": int(total // 120 * 0.03 * rng.random())})
        weekday = 0.6 if day.weekday() >= 5 else 1.0
        statements = []
        for queryid, query, per_day, mean_ms, rows_per_call in STATEMENTS:
            calls = per_day * weekday * (0.6 + 0.4 * progress) * (1 + rng.gauss(0, 0.08))
            c = counters[queryid]
            c["calls"] += round(max(calls, 0))
            c["time"] += max(calls, 0) * mean_ms * (1 + rng.gauss(0, 0.05))
            c["rows"] += round(max(calls, 0) * rows_per_call)
            xact += round(max(calls, 0))
            statements.append({
                "queryid": queryid, "userid": 0, "dbid": 0, "calls": int(c["calls"]),
                "total_exec_time": round(c["time"], 3), "rows": int(c["rows"]),
                "shared_blks_hit": int(c["rows"] * 3), "shared_blks_read": int(c["rows"] * 0.02),
                "shared_blks_dirtied": 0, "shared_blks_written": 0, "temp_blks_read": 0, "temp_blks_written": 0,
                "stats_since": None, "query": query, "calls_today": round(max(calls, 0)),
            })
        database_bytes = int(final_db * grow * noise)
        plan.append({"metrics": {
            "day": day, "taken_at": _at(day, 2), "server_version": version, "database_name": database_name,
            "postmaster_start": postmaster, "stats_reset": stats_reset, "database_bytes": database_bytes,
            "cluster_bytes": int(final_cluster * grow * noise), "connections": 8 + int(rng.random() * 25),
            "max_connections": 100, "xact_commit": xact, "xact_rollback": xact // 500,
            "blks_read": xact // 40, "blks_hit": xact * 3, "cache_hit_ratio": 0.985 + 0.014 * rng.random(),
            "live_tuples": sum(t["live_tuples"] for t in tables), "dead_tuples": sum(t["dead_tuples"] for t in tables),
            "xid_age": 20_000_000 + i * 150_000, "cluster_xid_age": 20_000_000 + i * 150_000,
        }, "tables": tables, "statements": statements, "findings": _findings(i, days, rng),
            "drill": _drill(day, rng)})
    return plan


def _at(day: date, hour: int) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=timezone.utc)
