"""Indexes: unused, duplicate, invalid, missing for foreign keys; cache hits; sequential-scan-heavy tables."""

from __future__ import annotations

import re

from pgrunbooks.checks.format import pct, size
from pgrunbooks.checks.registry import Check, register
from pgrunbooks.checks.runner import finding, grade, ok
from pgrunbooks.findings import Severity
from pgrunbooks.names import qualified, quote_ident



_CREATE_INDEX = re.compile(r"^CREATE (UNIQUE )?INDEX ")


def _recreate(definition: str) -> str:
    """The undo of dropping an index: its definition (pg_get_indexdef, which quotes every name),
    built concurrently."""
    return _CREATE_INDEX.sub(lambda m: f"create {'unique ' if m[1] else ''}index concurrently ", definition, count=1)


def _unused(check, rows, t, ctx):
    out = []
    for r in rows:
        if t["min_bytes"] is not None and r["bytes"] < t["min_bytes"]:
            continue
        since = f"since statistics were reset {r['stats_reset']:%Y-%m-%d}" if r["stats_reset"] else "since statistics began"
        out.append(finding(
            check, Severity.WARNING, f"{r['name']} ({size(r['bytes'])}) has never been scanned",
            object=r["name"], value=r["idx_scan"], threshold=0,
            detail=f"{since}; every insert and update on {qualified(r['schema'], r['table'])} still maintains it. "
                   f"{r['definition']}. Check read replicas and rare jobs (month-end reports) before dropping.",
            remediation=f"drop index concurrently {r['name']};\n-- undo: {_recreate(r['definition'])};",
            data=r,
        ))
    return out or [ok(check, "every plain index has been scanned at least once")]


def _duplicates(check, rows, t, ctx):
    out = []
    for r in rows:
        how = "identical to" if r["identical"] else "a prefix of"
        out.append(finding(
            check, Severity.WARNING, f"{r['name']} is {how} {r['covered_by']}",
            object=r["name"], value=r["bytes"],
            detail=f"{r['definition']}; covered by {r['covering_definition']}. Queries can use the other index; "
                   "this one only costs writes and space.",
            remediation=f"drop index concurrently {r['name']};\n-- undo: {_recreate(r['definition'])};",
            data=r,
        ))
    return out or [ok(check, "no index duplicates or prefixes another")]


def _invalid(check, rows, t, ctx):
    out = []
    for r in rows:
        if r["building_pid"]:
            out.append(finding(
                check, Severity.INFO, f"{r['name']} is being built by pid {r['building_pid']}", object=r["name"],
                detail=r["definition"], data=r,
                remediation="-- Wait for the build to finish; its progress:\n"
                            f"select * from pg_catalog.pg_stat_progress_create_index where pid = {r['building_pid']};"))
            continue
        out.append(finding(
            check, Severity.WARNING, f"{r['name']} is invalid", object=r["name"], value=r["bytes"],
            detail=f"{r['definition']}. Left by a failed concurrent build: maintained on every write, never used"
                   + (", and as a unique index it still rejects duplicates" if r["indisunique"] else "") + ".",
            remediation="-- Fix the cause first (for a unique index: the duplicates), then rebuild it:\n"
                        f"reindex index concurrently {r['name']};\n"
                        f"-- or drop it instead: drop index concurrently {r['name']};" + check.action_hint
                        + "\n-- It also drops the _ccnew leftovers of failed rebuilds.",
            data=r,
        ))
    return out or [ok(check, "no invalid index")]


def _fk_without_index(check, rows, t, ctx):
    out = []
    for r in rows:
        cols = ", ".join(quote_ident(c) for c in r["columns"])
        name = quote_ident(f"{r['table']}_{'_'.join(r['columns'])}_idx")
        out.append(finding(
            check, Severity.WARNING,
            f"foreign key {quote_ident(r['constraint_name'])} on {r['table_name']} ({cols}) has no supporting index",
            object=r["name"], value=r["rows_estimate"],
            detail=f"references {r['referenced_table']}; each delete or key update there scans "
                   f"{r['table_name']} (~{r['rows_estimate']:,} rows) while holding locks.",
            remediation=f"create index concurrently {name} on {r['table_name']} ({cols});",
            data=r,
        ))
    return out or [ok(check, "every foreign key has an index on its columns")]


def _cache_hit(check, rows, t, ctx):
    out = []
    summary = []
    for r in rows:
        total = r["hits"] + r["reads"]
        summary.append(f"{r['kind']} {pct(r['ratio'], 2) if r['ratio'] is not None else 'n/a'} of {total:,} blocks")
        if total < (t["min_blocks"] or 0) or r["ratio"] is None:
            continue
        severity = grade(r["ratio"], t["warning"], t["critical"], higher_is_worse=False)
        if severity is Severity.OK:
            continue
        out.append(finding(
            check, severity, f"{r['kind']} cache hit ratio {pct(r['ratio'], 2)}", object=r["kind"],
            value=round(r["ratio"], 5), threshold=t["warning"],
            detail=f"{r['reads']:,} of {total:,} block accesses missed shared_buffers: the working set does not "
                   "fit in memory, or large scans evict it.",
            data=r,
        ))
    return out or [ok(check, "; ".join(summary) + (f" (judged from {t['min_blocks']:,} accesses)" if t["min_blocks"] else ""))]


def _seq_heavy(check, rows, t, ctx):
    out = []
    for r in rows:
        if r["seq_scan"] < t["min_seq_scans"]:
            continue
        severity = grade(r["seq_share"], t["warning"], t["critical"])
        if severity is Severity.OK:
            continue
        out.append(finding(
            check, severity,
            f"{r['name']}: {pct(r['seq_share'])} of scans are sequential ({r['seq_scan']:,} scans, "
            f"~{r['rows_per_seq_scan'] or 0:,.0f} rows each)",
            object=r["name"], value=round(r["seq_share"], 4), threshold=t["warning"],
            detail=f"{r['n_live_tup']:,} live rows; {r['seq_tup_read']:,} rows read sequentially in total.",
            data=r,
        ))
    return out or [ok(check, f"no table of {t['min_rows']:,}+ rows is mostly read by sequential scans")]


register(Check(
    id="unused_indexes",
    title="Unused indexes",
    category="indexes",
    description="Valid indexes with no scan since statistics began (not primary keys, unique or constraint "
                "indexes, nor the only index supporting a foreign key); at least min_bytes.",
    why="Every index costs on each insert and update, in WAL, backups and memory; an index nobody reads is "
        "pure cost.",
    remediation="drop index concurrently <index>;  -- keep its definition to recreate it",
    evaluate=_unused,
    thresholds={"min_bytes": 0},
))

register(Check(
    id="duplicate_indexes",
    title="Duplicate indexes",
    category="indexes",
    description="Indexes identical to another, or (btree) whose key columns lead another index's.",
    why="A duplicate doubles the write cost for no read benefit; the planner picks one of the two.",
    remediation="drop index concurrently <index>;",
    evaluate=_duplicates,
))

register(Check(
    id="invalid_indexes",
    title="Invalid indexes",
    category="indexes",
    description="Indexes left invalid by a failed concurrent build or rebuild.",
    why="An invalid index is updated on every write but never used; a failed unique one still rejects "
        "inserts of duplicates.",
    remediation="reindex index concurrently <index>;",
    evaluate=_invalid,
    fixed_by="reindex",
))

register(Check(
    id="fk_without_index",
    title="Foreign keys without index",
    category="indexes",
    description="Foreign keys whose columns do not lead any valid, non-partial index (tables of at least "
                "min_rows estimated rows).",
    why="Deleting an organization then scans every referencing table in full, holding locks; cascades "
        "multiply it.",
    remediation="create index concurrently <table>_<columns>_idx on <table> (<columns>);",
    evaluate=_fk_without_index,
    thresholds={"min_rows": 0},
))

register(Check(
    id="cache_hit_ratio",
    title="Cache hit ratio",
    category="indexes",
    description="Share of table and index block accesses served from shared_buffers (judged from min_blocks "
                "accesses).",
    why="Below ~99% for an OLTP workload the database reads from disk for ordinary queries: latency rises "
        "and I/O becomes the bottleneck.",
    remediation="Find the statements reading the most blocks (top_statements, low cache hit); add indexes "
                "for large sequential scans; archive cold data; or give the instance more memory "
                "(shared_buffers is ~25% of RAM on Supabase).",
    evaluate=_cache_hit,
    thresholds={"warning": 0.99, "critical": 0.95, "min_blocks": 1000000},
))

register(Check(
    id="seq_scan_heavy_tables",
    title="Sequential-scan-heavy tables",
    category="indexes",
    description="Tables of at least min_rows rows whose scans are mostly sequential (share of seq_scan), with "
                "at least min_seq_scans sequential scans.",
    why="Repeated full scans of a large table usually mean a missing index for a frequent filter.",
    remediation="Find the statements scanning it (top_statements, slow_statements), EXPLAIN them, and index "
                "the filter columns: create index concurrently … on <table> (<columns>);",
    evaluate=_seq_heavy,
    thresholds={"warning": 0.5, "critical": 0.9, "min_rows": 10000, "min_seq_scans": 100},
))
