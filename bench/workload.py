#!/usr/bin/env python3
"""Benchmark the app workload: transactions per second of ``pgrunbooks sandbox load`` at 1, 2 and 4 clients.

On a throwaway server (or ``--conninfo``, a superuser conninfo) with the VictorySync seed
(``--scale``, default 1, no faults): :func:`pgrunbooks.seed.workload.run` (pgbench with the
app's scripts) for ``--duration`` seconds per client count, ``--repeat`` times (median), after a
short warm-up. Prints one line per client count: tps, transactions, failed. The figure is what
the playbooks' tests and the evidence bench run under; it depends on the machine (2 cores here).
"""

from __future__ import annotations

import argparse
import statistics
import sys

from _server import add_server_args, server  # first: it puts lib/ on the path in a bare checkout

import psycopg
from psycopg import conninfo as pg_conninfo
from psycopg import sql


from pgrunbooks.seed import seed, workload

DATABASE = "bench_workload"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/workload.py", description=__doc__.split("\n\n")[0])
    add_server_args(p)
    p.add_argument("--scale", type=float, default=1.0, help="seed scale (default 1)")
    p.add_argument("--duration", type=float, default=10.0, help="seconds per measurement (default 10)")
    p.add_argument("--clients", default="1,2,4", help="client counts (default 1,2,4)")
    p.add_argument("--repeat", type=int, default=1, help="runs per client count (median; default 1)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    counts = [int(c) for c in args.clients.split(",") if c.strip()]
    with server(args.conninfo, args.pg_bin, prefix="pgrb-bench-wl-") as (admin, where):
        with psycopg.connect(admin, dbname="postgres", autocommit=True) as c:
            c.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(DATABASE)))
            c.execute(sql.SQL("create database {}").format(sql.Identifier(DATABASE)))
        db = pg_conninfo.make_conninfo(admin, dbname=DATABASE)
        try:
            with psycopg.connect(db, autocommit=True) as c:
                seed(c, scale=args.scale, faults="none")
                version = c.info.server_version
            print(f"server: {where} (PostgreSQL {version // 10000}); seed scale {args.scale:g}; "
                  f"pgbench {workload.pgbench_path(version // 10000)}")
            workload.run(db, duration=2, clients=max(counts))  # warm-up: caches, prepared plans
            for clients in counts:
                runs = [workload.run(db, duration=args.duration, clients=clients) for _ in range(args.repeat)]
                tps = statistics.median(r.tps for r in runs)
                print(f"app workload, {clients} client(s), {args.duration:g} s (median of {args.repeat}): "
                      f"{tps:,.0f} tps, {sum(r.transactions for r in runs):,} transactions, "
                      f"{sum(r.failed for r in runs)} failed")
        finally:
            with psycopg.connect(admin, dbname="postgres", autocommit=True) as c:
                c.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(DATABASE)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
