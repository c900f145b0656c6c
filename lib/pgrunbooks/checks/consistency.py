"""Consistency: orphaned rows, found through indexes (NOT EXISTS, never NOT IN)."""

from __future__ import annotations

from psycopg import sql

from pgrunbooks.checks.format import plural
from pgrunbooks.checks.registry import REGISTRY, Check, register
from pgrunbooks.checks.runner import compose, execute, fetch, finding, ok, transaction
from pgrunbooks.checks.security import API_SCHEMAS
from pgrunbooks.findings import Severity
from pgrunbooks.names import qualified, quote_ident


def _relationships(check, ctx, t):
    """Declared foreign keys plus the undeclared relationships missing_foreign_keys finds."""
    declared = fetch(ctx, check, check.sql(ctx.server_version), t)
    mfk = REGISTRY["missing_foreign_keys"]
    undeclared = fetch(ctx, mfk, mfk.sql(ctx.server_version),
                       {**mfk.thresholds, "schemas": t["schemas"], "exclude_tables": t["exclude_tables"]})
    pairs, seen = [], set()
    for r in declared:
        key = (r["table_oid"], r["column"])
        if key not in seen:
            seen.add(key)
            pairs.append((r["table_oid"], r["column"], r["referenced_oid"], r["referenced_column"],
                          r["constraint_name"], r["validated"]))
    for r in undeclared:
        key = (r["table_oid"], r["column"])
        if key not in seen:
            seen.add(key)
            pairs.append((r["table_oid"], r["column"], r["referenced_oid"], r["referenced_column"], None, None))
    if not pairs:
        return []
    params = {
        "tables": [p[0] for p in pairs],
        "columns": [p[1] for p in pairs],
        "referenced": [p[2] for p in pairs],
        "referenced_columns": [p[3] for p in pairs],
    }
    relations = fetch(ctx, check, check.sql(ctx.server_version, "relations"), params)
    for r in relations:
        pair = pairs[r["ord"] - 1]
        r["constraint_name"], r["validated"] = pair[4], pair[5]
    return relations


def _collect(check, ctx, t):
    rows = _relationships(check, ctx, t)
    for r in rows:
        r.update(orphans=None, orphan_keys=None, sample=[], method=None, skipped=None)
        if not r["readable"]:
            r["skipped"] = "privilege"
            continue
        if r["rls_active"]:
            r["skipped"] = "rls"
            continue
        ids = {
            "child": sql.Identifier(r["schema"], r["table"]),
            "col": sql.Identifier(r["column"]),
            "parent": sql.Identifier(r["referenced_schema"], r["referenced_table"]),
            "pcol": sql.Identifier(r["referenced_column"]),
        }
        distinct = r["distinct_estimate"]
        few_keys = distinct is not None and distinct * t["keys_per_row"] <= max(r["rows_estimate"], 1)
        if r["indexed"] and few_keys:
            r["method"] = "distinct keys through the index"
            part = "probe_keys"
        else:
            if not r["indexed"] and t["max_unindexed_rows"] is not None and r["rows_estimate"] > t["max_unindexed_rows"]:
                r["skipped"] = "unindexed"
                continue
            r["method"] = "anti-join through the indexes" if r["indexed"] else "anti-join (column not indexed)"
            part = "probe_rows"
        query = compose(ctx, check, check.sql(ctx.server_version, part), ids)
        with transaction(ctx, check) as cur:
            if part == "probe_rows":
                cur.execute("select set_config('enable_seqscan', 'off', true)")
            execute(ctx, check, cur, query, {"max_keys": t["max_keys"]})
            found = cur.fetchall()
        r["orphans"] = sum(f["rows"] for f in found)
        r["orphan_keys"] = len(found)
        r["sample"] = [f["key"] for f in found[:5]]
    return rows


_WHY_SKIPPED = {
    "privilege": "no SELECT privilege",
    "rls": "row level security applies to this role",
    "unindexed": "no index and too large to scan",
}


def _evaluate(check, rows, t, ctx):
    out = []
    skipped = [r for r in rows if r["skipped"]]
    for r in rows:
        if not r["orphans"]:
            continue
        child, parent = qualified(r["schema"], r["table"]), qualified(r["referenced_schema"], r["referenced_table"])
        col, pcol = quote_ident(r["column"]), quote_ident(r["referenced_column"])
        declared = r["constraint_name"] is not None
        severity = Severity.CRITICAL if declared and r["validated"] else Severity.WARNING
        how = (f"despite foreign key {r['constraint_name']} (its checks were bypassed: session_replication_role "
               "= replica or disabled triggers)" if declared and r["validated"]
               else f"foreign key {r['constraint_name']} is NOT VALID" if declared else "no foreign key")
        more = " or more" if r["orphan_keys"] >= t["max_keys"] else ""
        orphans = (f"{child} c where c.{col} is not null and not exists\n"
                   f"  (select 1 from {parent} p where p.{pcol} = c.{col});")
        out.append(finding(
            check, severity,
            f"{r['name']}: {r['orphans']:,}{more} rows point at {plural(r['orphan_keys'], 'missing ' + r['referenced_table'] + ' row')}",
            object=r["name"], value=r["orphans"],
            detail=f"{r['name']} -> {parent}({pcol}): {how}. "
                   f"Missing keys: {', '.join(r['sample'])}{' …' if r['orphan_keys'] > len(r['sample']) else ''}. "
                   f"Found by {r['method']}.",
            remediation=f"-- Review them:\nselect * from {orphans}\n"
                        f"-- then archive them (copy them somewhere first) or delete them:\ndelete from {orphans}\n"
                        "-- Then add (or validate) the foreign key so it cannot happen again (missing_foreign_keys).",
            data={k: v for k, v in r.items() if k != "ord"},
        ))
    if skipped:
        grants = sorted({qualified(r["schema"], r["table"]) for r in skipped if r["skipped"] == "privilege"}
                        | {qualified(r["referenced_schema"], r["referenced_table"]) for r in skipped if r["skipped"] == "privilege"})
        unindexed = [r["name"] for r in skipped if r["skipped"] == "unindexed"]
        fixes = []
        if grants:
            fixes.append(f"grant select on {', '.join(grants)} to {quote_ident(ctx.current_user)};")
        if any(r["skipped"] == "rls" for r in skipped):
            fixes.append("row level security hides rows from this role: run it as a BYPASSRLS role (postgres on "
                         "Supabase) or the tables' owner.")
        if unindexed:
            fixes.append("index the columns: " + ", ".join(unindexed))
        out.append(finding(
            check, Severity.SKIPPED, f"{plural(len(skipped), 'relationship')} not checked",
            detail="; ".join(f"{r['name']} ({_WHY_SKIPPED[r['skipped']]})" for r in skipped),
            remediation=" ".join(fixes), data={"relationships": [r["name"] for r in skipped]},
        ))
    if not out:
        return [ok(check, f"{plural(len(rows), 'relationship')} checked, no orphaned rows")]
    if all(f.severity is Severity.SKIPPED for f in out) and len(skipped) < len(rows):
        out.insert(0, ok(check, f"{plural(len(rows) - len(skipped), 'relationship')} checked, no orphaned rows"))
    return out


register(Check(
    id="orphaned_rows",
    title="Orphaned rows",
    category="consistency",
    description="Rows whose *_id (declared foreign key or undeclared reference found by missing_foreign_keys) "
                "points at a missing row, found with NOT EXISTS through indexes.",
    why="Rows of deleted organizations stay billable, visible in reports and exports, and break joins; the "
        "guide's NOT IN queries miss them whenever the subquery returns a NULL.",
    remediation="Archive or delete the orphans in one transaction, then add the foreign key (NOT VALID, "
                "then VALIDATE).",
    evaluate=_evaluate,
    collect=_collect,
    thresholds={"schemas": API_SCHEMAS, "exclude_tables": ["%\\_archives", "%\\_archive"], "max_keys": 1000,
                "keys_per_row": 20, "max_unindexed_rows": 1000000},
    statement_timeout="60s",
    reads="the referencing columns' indexes (one probe per distinct value, or an index-only anti-join) and the "
          "referenced keys' indexes",
))
