#!/usr/bin/env python3
"""Benchmark the sandbox seeder: rows per second overall and per table, and the
time to seed one million calls.

Creates a scratch database, seeds it at --scale (default 20: 1,000,000 calls
and 1,000,000 SMS), prints the figures, and drops the database (unless --keep).

Server: --conninfo (a superuser conninfo, e.g. "host=/path port=5432
user=supabase_admin dbname=postgres"); else the project's local sandbox if it
is running; else a throwaway server started for the run (--pg-bin selects the
binaries) and removed afterwards.
"""

from __future__ import annotations

import argparse
import sys
import time

from _server import add_server_args, server  # first: it puts lib/ on the path in a bare checkout

import psycopg
from psycopg import conninfo as pg_conninfo
from psycopg import sql

from pgrunbooks.seed import Sizes, revert_faults, seed


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/seed.py",
        description="Measure how fast pgrunbooks seeds a sandbox database.",
    )
    add_server_args(parser)
    parser.add_argument("--scale", type=float, default=20.0,
                        help="seed scale (default 20 = 1,000,000 calls and 1,000,000 SMS)")
    parser.add_argument("--faults", default="none",
                        help="faults to plant: none (default), all, or a,b (cluster faults are reverted)")
    parser.add_argument("--database", default="pgrunbooks_bench", help="scratch database name (dropped first)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database afterwards")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = Sizes.for_scale(args.scale)
    steps: list[tuple[str, int, float]] = []

    def progress(step: str, rows: int, seconds: float) -> None:
        steps.append((step, rows, seconds))
        print(f"  {step:<16} {rows:>10,} {seconds:8.2f} s", file=sys.stderr, flush=True)

    with server(args.conninfo, args.pg_bin, prefix="pgrb-bench-", reuse_local=True) as (base, where):
        admin = pg_conninfo.make_conninfo(base, dbname="postgres")
        target = pg_conninfo.make_conninfo(base, dbname=args.database)
        with psycopg.connect(admin, autocommit=True) as conn:
            version = conn.execute("show server_version").fetchone()[0]
            settings = dict(conn.execute(
                "select name, setting from pg_settings where name in"
                " ('fsync', 'synchronous_commit', 'shared_buffers', 'maintenance_work_mem')"
            ).fetchall())
            conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(args.database)))
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(args.database)))
        print(f"PostgreSQL {version} ({where}); "
              + ", ".join(f"{k}={v}" for k, v in sorted(settings.items())), file=sys.stderr)
        print(f"seeding {args.database} at scale {args.scale:g} "
              f"({sizes.calls:,} calls, {sizes.sms:,} SMS), faults={args.faults}", file=sys.stderr)
        try:
            with psycopg.connect(target, autocommit=True) as conn:
                started = time.monotonic()
                result = seed(conn, scale=args.scale, faults=args.faults, progress=progress)
                total = time.monotonic() - started
                db_size = conn.execute("select pg_size_pretty(pg_database_size(current_database()))").fetchone()[0]
                if result.faults:
                    revert_faults(conn, result.faults)
        finally:
            if not args.keep:
                with psycopg.connect(admin, autocommit=True) as conn:
                    conn.execute(
                        sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(args.database))
                    )

    rows = sum(result.counts.values())
    loads = {step: (n, s) for step, n, s in steps if step in result.counts}
    load_seconds = sum(s for _, s in loads.values())
    after = {step: s for step, _, s in steps if step not in result.counts}
    print()
    print(f"{'table':<18}{'rows':>12}{'seconds':>10}{'rows/s':>14}")
    for table, (n, s) in loads.items():
        rate = f"{n / s:,.0f}" if s > 0 else "-"
        print(f"{table:<18}{n:>12,}{s:>10.2f}{rate:>14}")
    for step, s in after.items():
        print(f"{step:<18}{'':>12}{s:>10.2f}")
    print()
    print(f"total: {rows:,} rows in {total:.2f} s (database {db_size}) = {rows / total:,.0f} rows/s overall; "
          f"inserts alone {rows / load_seconds:,.0f} rows/s")
    calls_rows, calls_s = loads["calls"]
    if calls_rows:
        note = "" if calls_rows >= 1_000_000 else " (extrapolated from a smaller seed: use --scale 20)"
        print(f"one million calls{note}: {calls_s * 1_000_000 / calls_rows:.2f} s to insert, "
              f"{total * 1_000_000 / calls_rows:.2f} s of end-to-end seed (schema, all tables, keys, "
              f"indexes, analyze, settle) per million calls")
    return 0


if __name__ == "__main__":
    sys.exit(main())
