"""Space: database, schema and table sizes; growth against the last db_metrics snapshot."""

from __future__ import annotations

from pgrunbooks.checks.format import duration, pct, size
from pgrunbooks.checks.registry import Check, register
from pgrunbooks.checks.runner import SkipCheck, fetch, finding, grade, ok
from pgrunbooks.findings import Severity
from pgrunbooks.names import quote_ident

GiB = 1024**3


def _database_size(check, rows, t, ctx):
    current = next((r for r in rows if r["current"]), None)
    if current is None:
        return [ok(check, "the current database could not be measured")]
    others = ", ".join(f"{r['database']} {size(r['bytes'])}" for r in rows if not r["current"])
    detail = f"{ctx.database}: {size(current['bytes'])}" + (f"; other databases: {others}" if others else "")
    severity = grade(current["bytes"], t["warning"], t["critical"])
    title = f"database {ctx.database} uses {size(current['bytes'])}"
    if severity is Severity.OK:
        return [ok(check, detail, title=title, value=current["bytes"])]
    return [finding(check, severity, title, object=quote_ident(ctx.database), value=current["bytes"],
                    threshold=t["warning"], detail=detail)]


def _schema_sizes(check, rows, t, ctx):
    out = []
    for r in rows:
        severity = grade(r["total_bytes"], t["warning"], t["critical"])
        if severity is Severity.OK:
            continue
        out.append(finding(
            check, severity, f"schema {r['schema']} uses {size(r['total_bytes'])}", object=quote_ident(r["schema"]),
            value=r["total_bytes"], threshold=t["warning"],
            detail=f"{r['relations']} relations: heap {size(r['heap_bytes'])}, TOAST {size(r['toast_bytes'])}, "
                   f"indexes {size(r['index_bytes'])}", data=r))
    if out:
        return out
    listing = "; ".join(f"{r['schema']} {size(r['total_bytes'])}" for r in rows[:8])
    return [ok(check, listing or "no user tables", title=f"{len(rows)} schemas measured")]


def _table_sizes(check, rows, t, ctx):
    out = []
    for r in rows:
        severity = grade(r["total_bytes"], t["warning"], t["critical"])
        if severity is Severity.OK:
            continue
        out.append(finding(
            check, severity, f"{r['name']} uses {size(r['total_bytes'])}", object=r["name"],
            value=r["total_bytes"], threshold=t["warning"],
            detail=f"heap {size(r['heap_bytes'])}, TOAST {size(r['toast_bytes'])}, {r['indexes']} indexes "
                   f"{size(r['index_bytes'])}, ~{max(r['rows_estimate'], 0):,} rows", data=r))
    if out:
        return out
    listing = "; ".join(f"{r['name']} {size(r['total_bytes'])}" for r in rows[:5])
    return [ok(check, listing or "no user tables", title=f"largest tables: {listing}" if rows else None)]


def _collect_growth(check, ctx, t):
    guard = fetch(ctx, check, check.sql(ctx.server_version, "guard"), t)[0]
    if not guard["exists"]:
        raise SkipCheck("public.db_metrics does not exist, so there is no snapshot to compare with",
                        "create the guide's monitoring table and record db_size_mb daily (see docs/checks.md)")
    if not guard["readable"]:
        raise SkipCheck(f"role {ctx.current_user} may not read public.db_metrics",
                        f"grant select on public.db_metrics to {quote_ident(ctx.current_user)};")
    if guard["rls_active"]:
        raise SkipCheck(f"row level security on public.db_metrics hides its rows from {ctx.current_user}",
                        "run it as a BYPASSRLS role (postgres on Supabase), or add a select policy for this role")
    if not guard["indexed"] and t["max_scan_rows"] is not None and guard["rows_estimate"] > t["max_scan_rows"]:
        raise SkipCheck(
            f"public.db_metrics holds ~{guard['rows_estimate']:,} rows and no index to find the latest snapshot; "
            "reading it all is more than a health check should do",
            "create index concurrently db_metrics_metric_name_recorded_at_idx "
            "on public.db_metrics (metric_name, recorded_at);")
    return fetch(ctx, check, check.sql(ctx.server_version), t)


def _growth(check, rows, t, ctx):
    r = rows[0]
    if r["previous_bytes"] is None:
        return [ok(check, f"no {t['metric']} snapshot in public.db_metrics older than {t['min_age_hours']:g} h; "
                          f"the database uses {size(r['bytes'])}", value=None)]
    previous, current = r["previous_bytes"], r["bytes"]
    change = (current - previous) / previous if previous else None
    when = f"{duration(r['days_since'] * 86400)} ago ({r['previous_at']:%Y-%m-%d %H:%M})"
    detail = f"{size(previous)} {when} -> {size(current)} now"
    if change is None:
        return [ok(check, detail)]
    severity = grade(change, t["warning"], t["critical"])
    data = {k: r[k] for k in ("bytes", "previous_bytes", "previous_at", "days_since")}
    if severity is not Severity.OK:
        return [finding(check, severity, f"database grew {pct(change)} since the snapshot {when}",
                        object=quote_ident(ctx.database), value=round(change, 4), threshold=t["warning"], detail=detail, data=data)]
    if change <= -abs(t["warning"] or 0.1):
        return [finding(check, Severity.INFO, f"database shrank {pct(-change)} since the snapshot {when}",
                        object=quote_ident(ctx.database), value=round(change, 4), threshold=t["warning"], data=data,
                        detail=detail + " (an archive, a VACUUM FULL or a restore; or the snapshot is from "
                                        "another database)", remediation="")]
    return [ok(check, f"{pct(change, 1)} change: {detail}", value=round(change, 4), data=data)]


register(Check(
    id="database_size",
    title="Database size",
    category="space",
    description="Size of the current database (bytes) against thresholds set to your disk; other databases "
                "are listed.",
    why="A full disk stops every write (and on Supabase switches the project to read-only mode).",
    remediation="See table_sizes for where the space goes. Archive old calls and SMS (the archive action), "
                "reclaim bloat (index_bloat, table_bloat: the reindex action, VACUUM FULL in a maintenance window), "
                "or grow the disk. "
                "Set the thresholds to ~70%/90% of your disk.",
    evaluate=_database_size,
    thresholds={"warning": 8 * GiB, "critical": 16 * GiB},
    fixed_by="archive",
))

register(Check(
    id="schema_sizes",
    title="Schema sizes",
    category="space",
    description="Disk used per schema (heap, TOAST, indexes); flagged only when thresholds (bytes) are set.",
    why="Shows which part of the system owns the space: the app (public), auth, storage, or extensions.",
    remediation="Drill down with table_sizes; archive or drop what is no longer needed.",
    evaluate=_schema_sizes,
    thresholds={"warning": None, "critical": None},
))

register(Check(
    id="table_sizes",
    title="Table sizes",
    category="space",
    description="The largest tables: heap, TOAST and index sizes and estimated rows (top `limit`); flagged "
                "only when thresholds (bytes) are set.",
    why="Large tables dominate backup, restore and vacuum times; indexes larger than their table often "
        "hide unused or bloated indexes.",
    remediation="Archive old rows (the archive action); check unused_indexes and index_bloat for the "
                "index share.",
    evaluate=_table_sizes,
    thresholds={"warning": None, "critical": None, "limit": 30},
    fixed_by="archive",
))

register(Check(
    id="database_growth",
    title="Database growth",
    category="space",
    description="Relative growth since the latest public.db_metrics snapshot (metric_name 'db_size_mb') "
                "at least min_age_hours old; a large shrink is reported as info.",
    why="The guide expects a day-to-day size within ±10%; a jump means a runaway job, a bulk import or bloat.",
    remediation="Find the tables that grew (table_sizes; compare with the previous report). Record the size "
                "daily so the next run has a baseline:\n"
                "  insert into public.db_metrics (metric_name, metric_value)\n"
                "  select 'db_size_mb', pg_database_size(current_database()) / 1048576.0;",
    evaluate=_growth,
    collect=_collect_growth,
    thresholds={"warning": 0.1, "critical": 0.5, "metric": "db_size_mb", "min_age_hours": 20.0,
                "max_scan_rows": 10000},
    reads="public.db_metrics (bounded: refuses above max_scan_rows without an index)",
))
