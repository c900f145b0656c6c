"""Statements: pg_stat_statements, whatever its version and schema."""

from __future__ import annotations

from psycopg import sql

from pgrunbooks import pgss
from pgrunbooks.checks.format import duration, one_line, pct
from pgrunbooks.checks.registry import Check, register
from pgrunbooks.checks.runner import Context, finding, grade, ok
from pgrunbooks.findings import Severity
from pgrunbooks.names import qualified, quote_ident

STATS = ("pg_read_all_stats",)
PGSS = ("pg_stat_statements",)

#: our name -> the column's names, newest first (pg_stat_statements 1.8 renamed the *_time
#: columns to *_exec_time; 1.11 (PostgreSQL 17) renamed blk_*_time to shared_blk_*_time).
COLUMNS = {
    "total_exec_time": ("total_exec_time", "total_time"),
    "mean_exec_time": ("mean_exec_time", "mean_time"),
    "max_exec_time": ("max_exec_time", "max_time"),
    "stddev_exec_time": ("stddev_exec_time", "stddev_time"),
    "blk_read_time": ("shared_blk_read_time", "blk_read_time"),
    "blk_write_time": ("shared_blk_write_time", "blk_write_time"),
}


def pgss_identifiers(ctx: Context) -> dict[str, sql.Composable]:
    """``{pgss}``, ``{pgss_fn}``, ``{pgss_info}`` and the version-dependent column names."""
    if "pgss" not in ctx.cache:
        # Composed only for checks that require the extension (the runner skips them without it);
        # dropped since the run began, the query fails with the server's reason instead.
        found = pgss.locate(ctx.session) or pgss.Pgss("extensions", "", False, frozenset())
        names: dict[str, sql.Composable] = {
            "pgss": found.relation(),
            "pgss_fn": found.relation(),
            "pgss_info": found.relation("pg_stat_statements_info"),
        }
        for ours, candidates in COLUMNS.items():
            names[ours] = found.column(*candidates)
        ctx.cache["pgss"] = names
    return ctx.cache["pgss"]


def _slow(check, rows, t, ctx):
    out = []
    for r in rows:
        severity = grade(r["mean_ms"], t["warning"], t["critical"])
        if severity is Severity.OK:
            continue
        out.append(finding(
            check, severity,
            f"mean {r['mean_ms']:,.0f} ms over {r['calls']:,} calls: {one_line(r['query'], 80)}",
            object=f"queryid:{r['queryid']}", value=round(r["mean_ms"], 1), threshold=t["warning"],
            detail=f"user {r['username']}; max {r['max_ms']:,.0f} ms; {r['rows_per_call'] or 0:,.1f} rows per call; "
                   f"cache hit {pct(r['cache_hit'], 1)}; total {duration(r['total_ms'] / 1000)}. {one_line(r['query'], 600)}",
            data=r,
        ))
    if not out:
        slowest = f"; slowest mean {rows[0]['mean_ms']:,.1f} ms" if rows else ""
        return [ok(check, f"no statement averages {t['warning']:,} ms or more{slowest}")]
    return out


def _top(check, rows, t, ctx):
    if not rows:
        return [ok(check, "no statements recorded for this database yet")]
    total_ms = rows[0]["database_total_ms"] or 0
    if t["min_total_ms"] is not None and total_ms < t["min_total_ms"]:
        return [ok(check, f"only {total_ms / 1000:,.1f} s of execution recorded: too little to rank",
                   value=round(total_ms, 1))]
    out = []
    for r in rows[: int(t["report"])]:
        share = r["share_of_time"] or 0
        if t["share"] is not None and share < t["share"]:
            continue
        out.append(finding(
            check, Severity.INFO,
            f"{pct(share)} of database time ({duration(r['total_ms'] / 1000)}, {r['calls']:,} calls): {one_line(r['query'], 70)}",
            object=f"queryid:{r['queryid']}", value=round(share, 4), threshold=t["share"],
            detail=f"user {r['username']}; mean {r['mean_ms']:,.2f} ms; {r['rows']:,} rows; cache hit "
                   f"{pct(r['cache_hit'], 1)}; {pct(r['share_of_calls'], 1)} of calls. {one_line(r['query'], 600)}",
            data=r,
        ))
    if not out:
        return [ok(check, f"no statement takes {pct(t['share'])} or more of {duration(total_ms / 1000)} recorded")]
    return out


def _reset_age(check, rows, t, ctx):
    r = rows[0]
    may = "this role may reset them" if r["may_reset"] else "this role may not reset them"
    age_days = (r["age_s"] or 0) / 86400
    fill = f"{r['entries']:,} of {r['max_entries']:,} entries" if r["max_entries"] else f"{r['entries']:,} entries"
    detail = f"collected since {r['stats_reset']} ({duration(r['age_s'])}); {fill}; {may}"
    severity = Severity.INFO
    reasons = []
    if t["warning"] is not None and age_days >= t["warning"]:
        severity = Severity.WARNING
        reasons.append(f"statistics are {age_days:,.0f} days old: recent regressions drown in old averages")
    if t["max_dealloc"] is not None and (r["dealloc"] or 0) > t["max_dealloc"]:
        severity = Severity.WARNING
        reasons.append(f"{r['dealloc']:,} evictions: pg_stat_statements.max is too small, entries are lost")
    reset = qualified(ctx.extension_schema("pg_stat_statements"), "pg_stat_statements_reset")
    remediation = (
        "-- Reset after reading the top statements (e.g. weekly, or right after a deploy):\n"
        f"select {reset}();"
        if r["may_reset"]
        else f"-- Ask an administrator to let this role reset them:\n"
             f"grant execute on function {reset} to {quote_ident(ctx.current_user)};"
    )
    if "pg_stat_statements.max" in " ".join(reasons):
        remediation += "\n-- Raise pg_stat_statements.max (restart needed; on Supabase: support ticket / custom config)."
    return [finding(
        check, severity,
        f"statement statistics cover {duration(r['age_s'])}" + (f" ({'; '.join(reasons)})" if reasons else ""),
        value=round(age_days, 2), threshold=t["warning"], detail=detail, remediation=remediation, data=r,
    )]


register(Check(
    id="slow_statements",
    title="Slow statements",
    category="statements",
    description="Statements whose mean execution time (ms) is at or above the threshold, with at least "
                "min_calls calls.",
    why="A statement that is slow on average is slow for every user who triggers it; it usually lacks an "
        "index, reads too many rows, or sorts on disk.",
    remediation="EXPLAIN (ANALYZE, BUFFERS) it with typical parameters; look for sequential scans on large "
                "tables, row estimates far from actual, sorts spilling to disk. Add or fix the index, rewrite "
                "the query, or cache its result. Re-check after a pg_stat_statements reset.",
    evaluate=_slow,
    thresholds={"warning": 1000.0, "critical": 5000.0, "min_calls": 5, "limit": 20},
    extensions=PGSS,
    roles=STATS,
    identifiers=pgss_identifiers,
    min_version=140000,
))

register(Check(
    id="top_statements",
    title="Top statements",
    category="statements",
    description="Statements ranked by total execution time, with calls, rows, cache hit and share of the "
                "database's time; the top `report` taking at least `share` of it are reported as info.",
    why="Optimising the statement that takes 40% of the database's time helps more than fixing ten rare "
        "slow ones; it is where to look first when the database is busy.",
    remediation="Start with the largest share: EXPLAIN (ANALYZE, BUFFERS) it; a high call count with few rows "
                "per call suggests an N+1 pattern in the application or a missing cache.",
    evaluate=_top,
    thresholds={"share": 0.1, "report": 5, "limit": 20, "min_total_ms": 60000.0},
    extensions=PGSS,
    roles=STATS,
    identifiers=pgss_identifiers,
    min_version=140000,
))

register(Check(
    id="statements_reset_age",
    title="Statement statistics age",
    category="statements",
    description="Since when pg_stat_statements has been collecting (warning after `warning` days or when "
                "entries were evicted), and whether the connected role may reset it.",
    why="pg_stat_statements accumulates since its last reset: a months-old window hides this week's "
        "regression, and evictions (dealloc) mean statements are missing from the ranking.",
    remediation="select extensions.pg_stat_statements_reset();  -- after you have read the top statements",
    evaluate=_reset_age,
    thresholds={"warning": 30.0, "max_dealloc": 0},
    extensions=PGSS,
    identifiers=pgss_identifiers,
    min_version=140000,
))
