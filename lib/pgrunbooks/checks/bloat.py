"""Bloat: estimated from statistics; measured with pgstattuple when it is installed and usable."""

from __future__ import annotations

from psycopg import sql

from pgrunbooks.checks.format import pct, plural, size
from pgrunbooks.checks.registry import Check, register
from pgrunbooks.checks.runner import Context, SkipCheck, fetch, finding, grade, ok
from pgrunbooks.findings import Severity
from pgrunbooks.names import quote_ident

GiB = 1024**3
MiB = 1024**2


def _pgstattuple(ctx: Context, function: str) -> sql.Composable | None:
    """The pgstattuple function ``function`` when the extension is installed and this role may call it."""
    schema = ctx.extension_schema("pgstattuple")
    if schema is None:
        return None
    key = f"pgstattuple:{function}"
    if key not in ctx.cache:
        ctx.cache[key] = bool(ctx.session.scalar(
            "select coalesce(bool_or(pg_catalog.has_function_privilege(p.oid, 'execute')), false)"
            " from pg_catalog.pg_proc p join pg_catalog.pg_namespace n on n.oid = p.pronamespace"
            " where n.nspname = %s and p.proname = %s",
            (schema, function),
        ))
    return sql.Identifier(schema, function) if ctx.cache[key] else None


def _estimate(rows, t):
    for r in rows:
        expected = r["expected_pages"]
        if expected is None or not r["pages"]:
            r["ratio"], r["bloat_bytes"] = None, None
            continue
        waste_pages = max(r["pages"] - expected, 0)
        r["ratio"] = waste_pages / r["pages"]
        r["bloat_bytes"] = waste_pages * (r["bytes"] // r["pages"])
        r["method"] = "estimate"


def _flagged(r, t) -> bool:
    return (r.get("ratio") is not None and r["ratio"] >= (t["warning"] if t["warning"] is not None else 2)
            and (r["bloat_bytes"] or 0) >= (t["min_bytes"] or 0))


def _collector(kind: str, function: str):
    def collect(check, ctx, t):
        rows = fetch(ctx, check, check.sql(ctx.server_version), t)
        _estimate(rows, t)
        if rows and all(r["statistics_hidden"] for r in rows):
            raise SkipCheck(
                f"no planner statistics visible to {ctx.current_user} for any {kind}: pg_stats hides them from "
                "roles that may not read the table or are subject to its row level security",
                "run it as the tables' owner or a BYPASSRLS role (postgres on Supabase), or install pgstattuple "
                f"and grant pg_stat_scan_tables to {quote_ident(ctx.current_user)};",
            )
        exact = _pgstattuple(ctx, function)
        if exact is None:
            return rows
        for r in rows:
            if not _flagged(r, t) or (t["max_exact_bytes"] is not None and r["bytes"] > t["max_exact_bytes"]):
                continue
            found = fetch(ctx, check, check.sql(ctx.server_version, "exact"), {"oid": r["oid"]},
                          identifiers={function: exact})
            if not found:
                continue
            m = found[0]
            if kind == "table":
                ff = (r["fillfactor"] or 100) / 100
                live = float(m["approx_tuple_len"] or 0) / ff
                waste = max(float(m["table_len"]) - live, 0.0)
                r["exact_ratio"] = waste / float(m["table_len"]) if m["table_len"] else 0.0
                r["exact_bloat_bytes"] = int(waste)
            else:
                density = float(m["avg_leaf_density"] or 0)
                ff = r["fillfactor"] or 90
                r["exact_ratio"] = max(0.0, 1 - density / ff) if density == density else None  # NaN: empty
                r["exact_bloat_bytes"] = int((r["exact_ratio"] or 0) * float(m["index_size"]))
            r["method"] = f"{function}()"
        return rows

    return collect


def _evaluator(kind: str, remedy):
    def evaluate(check, rows, t, ctx):
        out = []
        hidden = [r["name"] for r in rows if r["statistics_hidden"]]
        without = [r["name"] for r in rows if not r["has_statistics"] and not r["statistics_hidden"]]
        for r in rows:
            if not _flagged(r, t):
                continue
            ratio, waste = r["ratio"], r["bloat_bytes"]
            if r.get("exact_ratio") is not None:
                ratio, waste = r["exact_ratio"], r["exact_bloat_bytes"]
                if waste < (t["min_bytes"] or 0):
                    continue
            severity = grade(ratio, t["warning"], t["critical"])
            if severity is Severity.OK:
                continue
            how = "measured with " + r["method"] if r.get("exact_ratio") is not None else "estimated from statistics"
            out.append(finding(
                check, severity, f"{r['name']}: ~{pct(ratio)} bloat ({size(waste)} of {size(r['bytes'])})",
                object=r["name"], value=round(ratio, 4), threshold=t["warning"],
                detail=f"{how}; {r['pages']:,} pages for ~{r['rows_estimate']:,} rows "
                       f"(about {r['expected_pages']:,} pages needed).",
                remediation=remedy(check, r), data=r,
            ))
        if hidden:
            out.append(finding(
                check, Severity.SKIPPED, f"{plural(len(hidden), kind, kind + 'es' if kind == 'index' else None)} not estimated: statistics hidden from "
                f"{ctx.current_user}", detail=", ".join(hidden[:30]),
                remediation="run it as the tables' owner or a BYPASSRLS role (postgres on Supabase): pg_stats hides "
                            "statistics of tables the role may not read or whose row level security applies to it",
                data={"relations": hidden}))
        if any(f.severity is not Severity.SKIPPED for f in out):
            return out
        worst = max((r for r in rows if r.get("ratio") is not None), key=lambda r: r["bloat_bytes"], default=None)
        tail = f"; most: {worst['name']} ~{size(worst['bloat_bytes'])}" if worst and worst["bloat_bytes"] else ""
        unanalyzed = f"; {plural(len(without), kind)} without statistics (never analyzed)" if without else ""
        return [ok(check, f"no {kind} wastes {pct(t['warning'])} and {size(t['min_bytes'] or 0)}{tail}{unanalyzed}")] + out

    return evaluate


def _table_remedy(check, r) -> str:
    # A plain VACUUM leaves the table its size: only a rewrite removes the finding.
    return ("-- A plain VACUUM makes the dead space reusable without a lock, but the table keeps its size:\n"
            f"--   vacuum (analyze, verbose) {r['name']};\n"
            "-- Giving the space back needs a rewrite, under an ACCESS EXCLUSIVE lock for its whole duration\n"
            "-- (a maintenance window), or pg_repack online:\n"
            f"vacuum (full, analyze, verbose) {r['name']};")


def _index_remedy(check, r) -> str:
    return f"reindex index concurrently {r['name']};" + check.action_hint


register(Check(
    id="table_bloat",
    title="Table bloat",
    category="bloat",
    description="Tables whose estimated wasted space is at least `warning` of their size and min_bytes; "
                "measured with pgstattuple_approx() when pgstattuple is installed.",
    why="Bloated tables are larger on disk and in cache than their data: scans, backups and memory pay "
        "for the empty space.",
    remediation="vacuum (full, analyze) <table>;  -- ACCESS EXCLUSIVE lock for the whole rewrite; or pg_repack "
                "online. A plain vacuum (analyze) makes the space reusable but does not shrink the table.",
    evaluate=_evaluator("table", _table_remedy),
    collect=_collector("table", "pgstattuple_approx"),
    thresholds={"warning": 0.5, "critical": 0.8, "min_bytes": 10 * MiB, "max_exact_bytes": GiB},
    reads="catalogs and pg_stats; with pgstattuple, flagged tables up to max_exact_bytes",
))

register(Check(
    id="index_bloat",
    title="Index bloat",
    category="bloat",
    description="Btree indexes whose estimated wasted space is at least `warning` of their size and "
                "min_bytes; measured with pgstatindex() when pgstattuple is installed.",
    why="Bloated indexes need more I/O per lookup and more cache; REINDEX CONCURRENTLY rebuilds them "
        "without blocking writes.",
    remediation="reindex index concurrently <index>;",
    evaluate=_evaluator("index", _index_remedy),
    collect=_collector("index", "pgstatindex"),
    thresholds={"warning": 0.5, "critical": 0.8, "min_bytes": 10 * MiB, "max_exact_bytes": GiB},
    fixed_by="reindex",
    reads="catalogs and pg_stats; with pgstattuple, flagged indexes up to max_exact_bytes",
))
