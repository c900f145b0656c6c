#!/usr/bin/env python3
"""Benchmark merge_organizations: the action's apply against plain per-table UPDATEs in one transaction.

Builds a scratch database with the VictorySync schema (seeded small, with the ``orphaned_rows``
fault so five ``org_id`` columns have no foreign key and the action takes its table locks), then
gives organization B (``blue-hvac-2``) ``--rows`` more rows (default 100,000: calls, SMS, their
recordings and billing records), and clones it (``CREATE DATABASE … TEMPLATE``) once per run so
each contender starts from identical data:

* **baseline** — what a careful DBA types: in one transaction, delete B's memberships that collide
  with A's, one ``update <table> set org_id = A where org_id = B`` per table, ``delete`` B.
* **action** — :func:`plan_merge_organizations` (not timed: it is the dry run a human reads), then
  ``apply`` (timed): locks, re-counts, collisions, the moves with their keys returned, in-transaction
  verification, B deleted, the late-row sweep and the undo SQL with every moved key.

Prints both times, the rows moved and the ratio (goal: action ≤ 2× baseline).

Server: ``--conninfo`` (a superuser conninfo), else a throwaway server from the wheel
(``--pg-bin`` for other binaries), removed afterwards.
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

from pgrunbooks.actions import apply
from pgrunbooks.actions.data.merge_organizations import plan_merge_organizations
from pgrunbooks.db import connect
from pgrunbooks.seed import seed

SOURCE = "bench_merge_src"
FROM, INTO = "blue-hvac-2", "harbor-catering-4"
TABLES = ("archives", "billing_records", "calls", "invoices", "org_users", "phone_numbers", "recordings",
          "sms_messages")  # every table with an org_id in this scratch database (no archives: they keep theirs)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/merge.py", description=__doc__.split("\n\n")[0])
    add_server_args(p)
    p.add_argument("--rows", type=int, default=100_000, help="extra rows planted for B (default 100,000)")
    p.add_argument("--repeat", type=int, default=2, help="runs of each contender (medians are reported; default 2)")
    return p.parse_args(argv)


def build_source(base: str, rows: int) -> int:
    """The scratch database; returns B's rows across all tenant tables."""
    recreate(base, SOURCE)
    with psycopg.connect(dsn(base, SOURCE), autocommit=True) as c:
        seed(c, scale=0.2, faults="orphaned_rows")
        c.execute("set role postgres")
        b = c.execute("select id from public.organizations where slug = %s", (FROM,)).fetchone()[0]
        calls, sms = rows * 55 // 100, rows * 30 // 100
        c.execute(
            "insert into public.calls (id, org_id, direction, from_number, to_number, status, duration, created_at)"
            " select md5('bench-merge-call:' || g)::uuid, %s, 'inbound', '+1555' || lpad(g::text, 7, '0'),"
            " '+1666' || lpad(g::text, 7, '0'), 'completed', g %% 900, now() - g * interval '1 minute'"
            " from generate_series(1, %s) g", (b, calls))
        c.execute(
            "insert into public.recordings (call_id, org_id, url, duration, created_at)"
            " select md5('bench-merge-call:' || g)::uuid, %s, 'https://example.invalid/r/' || g, 60, now()"
            " from generate_series(1, %s, 10) g", (b, calls))
        c.execute(
            "insert into public.sms_messages (org_id, direction, from_number, to_number, body, status, created_at)"
            " select %s, 'outbound', '+1666' || lpad(g::text, 7, '0'), '+1555' || lpad(g::text, 7, '0'), 'hello',"
            " 'delivered', now() - g * interval '1 minute' from generate_series(1, %s) g", (b, sms))
        c.execute(
            "insert into public.billing_records (org_id, description, amount, created_at)"
            " select %s, 'usage', 1.00, now() - g * interval '1 hour' from generate_series(1, %s) g",
            (b, rows - calls - sms - calls // 10))
        c.execute("reset role")
        c.execute("vacuum (analyze)")
        c.execute("checkpoint")
        return sum(c.execute(sql.SQL("select count(*) from public.{} where org_id = %s").format(sql.Identifier(t)),
                             (b,)).fetchone()[0] for t in TABLES)


def baseline(base: str) -> dict:
    name = "bench_merge_baseline"
    recreate(base, name, SOURCE)
    try:
        with psycopg.connect(dsn(base, name, "postgres")) as c:
            b, a = (c.execute("select id from public.organizations where slug = %s", (s,)).fetchone()[0] for s in (FROM, INTO))
            c.commit()
            started = time.monotonic()
            moved = 0
            with c.transaction():
                c.execute("delete from public.org_users x using public.org_users y"
                          " where x.org_id = %s and y.org_id = %s and y.user_id = x.user_id", (b, a))
                for t in TABLES:
                    moved += c.execute(sql.SQL("update public.{} set org_id = %s where org_id = %s").format(
                        sql.Identifier(t)), (a, b)).rowcount
                c.execute("delete from public.organizations where id = %s", (b,))
            return {"rows": moved, "seconds": time.monotonic() - started}
    finally:
        drop(base, name)


def action(base: str) -> dict:
    name = "bench_merge_action"
    recreate(base, name, SOURCE)
    os.environ.setdefault("PGRUNBOOKS_AUDIT_LOG", str(Path(tempfile.gettempdir()) / "pgrunbooks-bench-merge-audit.jsonl"))
    try:
        with connect(dsn(base, name, "postgres"), runbook="bench_merge", read_only=False) as s:
            plan = plan_merge_organizations(s, FROM, INTO, statement_timeout="5min")
            started = time.monotonic()
            result = apply(plan, confirm=plan.confirm, progress=False)
            seconds = time.monotonic() - started
        return {"rows": sum(o["moved"] for o in result.objects), "seconds": seconds, "verified": result.ok,
                "undo_mb": len(result.undo or "") / 1e6, "timings": result.timings}
    finally:
        drop(base, name)


def median(runs: list[dict]) -> dict:
    return sorted(runs, key=lambda r: r["seconds"])[(len(runs) - 1) // 2]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with server(args.conninfo, args.pg_bin, prefix="pgrb-bench-merge-") as (base, where):
        print(f"server: {where}")
        total = build_source(base, args.rows)
        print(f"source: organization {FROM} holds {total:,} rows across {len(TABLES)} tables")
        base_runs, action_runs = [], []
        for _ in range(max(1, args.repeat)):  # alternate, so background load hits both alike
            base_runs.append(baseline(base))
            action_runs.append(action(base))
        drop(base, SOURCE)
    b, a = median(base_runs), median(action_runs)
    print(f"baseline (per-table UPDATEs, one transaction): {b['rows']:,} rows in {b['seconds']:.3f}s "
          "(runs: " + ", ".join(f"{r['seconds']:.3f}" for r in base_runs) + ")")
    print(f"merge_organizations apply:                    {a['rows']:,} rows in {a['seconds']:.3f}s "
          "(runs: " + ", ".join(f"{r['seconds']:.3f}" for r in action_runs) + f"), verified: {a['verified']}, "
          f"undo {a['undo_mb']:.1f} MB")
    print("  steps: " + ", ".join(f"{k} {v:.3f}s" for k, v in a["timings"].items()))
    ratio = a["seconds"] / b["seconds"]
    print(f"ratio: {ratio:.2f}x the baseline (goal <= 2x): {'ok' if ratio <= 2 else 'over'}")
    return 0 if a["verified"] else 1


if __name__ == "__main__":
    sys.exit(main())
