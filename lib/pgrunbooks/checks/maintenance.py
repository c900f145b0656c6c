"""Maintenance: dead tuples, vacuum and analyze ages, wraparound, sequences."""

from __future__ import annotations

from pgrunbooks.checks.format import duration, pct, plural
from pgrunbooks.checks.registry import Check, register
from pgrunbooks.checks.runner import finding, grade, ok
from pgrunbooks.findings import Finding, Severity
from pgrunbooks.names import quote_ident

def _autovacuum_note(r) -> str:
    return " Autovacuum is disabled on this table (autovacuum_enabled = false)." if r.get("autovacuum_disabled") else ""


def _reenable(r) -> str:
    if not r.get("autovacuum_disabled"):
        return ""
    return f"\n  alter table {r['name']} reset (autovacuum_enabled);  -- let autovacuum look after it again"


def _dead_tuples(check, rows, t, ctx):
    out = []
    for r in rows:
        if r["n_dead_tup"] < t["min_dead_tuples"]:
            continue
        severity = grade(r["dead_ratio"], t["warning"], t["critical"])
        if severity is Severity.OK:
            continue
        last = f"last vacuumed {r['last_vacuum']:%Y-%m-%d %H:%M}" if r["last_vacuum"] else "no vacuum recorded"
        out.append(finding(
            check, severity,
            f"{r['name']}: {pct(r['dead_ratio'])} of its tuples are dead ({r['n_dead_tup']:,})",
            object=r["name"], value=round(r["dead_ratio"], 4), threshold=t["warning"],
            detail=f"{r['n_live_tup']:,} live, {r['n_dead_tup']:,} dead; {last}." + _autovacuum_note(r),
            remediation=f"vacuum (analyze, verbose) {r['name']};{_reenable(r)}\n"
                        "-- Dead tuples slow every scan and bloat the table; if autovacuum keeps falling behind, "
                        "lower autovacuum_vacuum_scale_factor for this table." + check.action_hint,
            data=r,
        ))
    if not out:
        worst = next((r for r in rows if r["dead_ratio"] is not None), None)
        tail = f"; highest {worst['name']} {pct(worst['dead_ratio'], 1)}" if worst else ""
        return [ok(check, f"no table with {pct(t['warning'])} dead tuples or more{tail}")]
    return out


def _vacuum_age(check, rows, t, ctx):
    out: list[Finding] = []
    if rows and not rows[0]["autovacuum_on"]:
        out.append(finding(check, Severity.CRITICAL, "autovacuum is off for the whole server", object="autovacuum",
                           detail="Nothing removes dead tuples or freezes old rows; wraparound will stop writes.",
                           remediation="alter system set autovacuum = on; select pg_reload_conf();"))
    for r in rows:
        days = r["days_since"]
        severity = Severity.WARNING if days is None else grade(days, t["warning"], t["critical"])
        if severity is Severity.OK:
            continue
        when = "never vacuumed (since statistics began)" if days is None else f"last vacuumed {duration(days * 86400)} ago"
        out.append(finding(
            check, severity, f"{r['name']}: {when}, {r['changes']:,} changes since",
            object=r["name"], value=None if days is None else round(days, 2), threshold=t["warning"],
            detail=f"{r['n_dead_tup']:,} dead tuples, {r['n_ins_since_vacuum']:,} rows inserted since the last "
                   f"vacuum (inserted rows need a vacuum too: visibility map, freezing)." + _autovacuum_note(r),
            remediation=f"vacuum (analyze) {r['name']};{_reenable(r)}" + check.action_hint,
            data=r,
        ))
    if not out:
        return [ok(check, f"every table with {t['min_changes']:,}+ changes was vacuumed in the last "
                          f"{t['warning']:g} days")]
    return out


def _stale_statistics(check, rows, t, ctx):
    out = []
    for r in rows:
        severity = grade(r["modified_ratio"], t["warning"], t["critical"])
        if severity is Severity.OK:
            continue
        out.append(finding(
            check, severity,
            f"{r['name']}: {r['n_mod_since_analyze']:,} rows changed since its last analyze "
            f"({pct(r['modified_ratio'])} of ~{r['rows_estimate']:,})",
            object=r["name"], value=round(r["modified_ratio"], 4), threshold=t["warning"],
            detail=f"last analyzed {duration((r['days_since'] or 0) * 86400)} ago; the planner works from "
                   "outdated row counts and value distributions." + _autovacuum_note(r),
            remediation=f"analyze {r['name']};{_reenable(r)}" + check.action_hint,
            data=r,
        ))
    if not out:
        return [ok(check, f"no analyzed table changed by {pct(t['warning'])} or more since its last analyze")]
    return out


def _never_analyzed(check, rows, t, ctx):
    out = []
    for r in rows:
        rows_text = f"~{r['n_live_tup']:,} rows" if r["n_live_tup"] else "data on disk"
        out.append(finding(
            check, Severity.WARNING, f"{r['name']} ({rows_text}) has never been analyzed",
            object=r["name"], value=r["n_live_tup"], threshold=t["min_rows"],
            detail="The planner has no statistics for it and guesses row counts and selectivities."
                   + _autovacuum_note(r),
            remediation=f"analyze {r['name']};{_reenable(r)}\n-- Bulk-load jobs should run ANALYZE after loading."
                        + check.action_hint,
            data=r,
        ))
    return out or [ok(check, "every table holding data has planner statistics")]


def _wraparound(kind: str, settings: str):
    def evaluate(check, rows, t, ctx):
        out = []
        for r in rows:
            severity = grade(r["ratio"], t["warning"], t["critical"])
            if severity is Severity.OK:
                continue
            oldest = ", ".join(r["oldest_tables"] or []) if r["current"] else ""
            out.append(finding(
                check, severity,
                f"database {r['database']}: {kind} age {r['age']:,} ({pct(r['ratio'])} of the wraparound limit)",
                object=quote_ident(r["database"]), value=round(r["ratio"], 4), threshold=t["warning"],
                detail=f"{settings} is {r['freeze_max_age']:,}; autovacuum should have frozen it long ago: look for "
                       "long transactions, abandoned replication slots or prepared transactions holding the horizon."
                       + (f" Oldest tables: {oldest}." if oldest else ""),
                data=r,
            ))
        if not out:
            top = rows[0] if rows else None
            detail = (f"oldest: {top['database']} at {top['age']:,} ({pct(top['ratio'], 2)} of the limit)"
                      if top else "no database visible")
            return [ok(check, detail, value=round(top["ratio"], 6) if top else None)]
        return out

    return evaluate


def _sequences(check, rows, t, ctx):
    out = []
    unreadable = []
    for r in rows:
        if not r["readable"]:
            unreadable.append(r["name"])
            continue
        low, high = float(r["min_value"]), float(r["max_value"])
        if r["column_max"] is not None and r["increment_by"] > 0:
            high = min(high, float(r["column_max"]))
        last = float(r["last_value"]) if r["last_value"] is not None else None
        if last is None or high <= low:
            continue
        used = (last - low) / (high - low) if r["increment_by"] > 0 else (high - last) / (high - low)
        r["used_ratio"] = used
        severity = grade(used, t["warning"], t["critical"])
        if severity is Severity.OK:
            continue
        capped = (f" (capped by column {r['column_name']} of type {r['column_type']})"
                  if r["column_max"] is not None and float(r["column_max"]) < float(r["max_value"]) else "")
        remaining = int(high - last) if r["increment_by"] > 0 else int(last - low)
        out.append(finding(
            check, severity, f"{r['name']} has used {pct(used, 1)} of its range; {remaining:,} values left",
            object=r["name"], value=round(used, 4), threshold=t["warning"],
            detail=f"last value {int(last):,} of {int(high):,}{capped}; type {r['data_type']}."
                   " When it runs out every insert fails.",
            remediation="-- Widen before it runs out (rewrites the table under an ACCESS EXCLUSIVE lock: plan a "
                        "window, or add a new bigint column and backfill in batches):\n"
                        + (f"alter table {r['column_table']} alter column {quote_ident(r['column_attname'])} type bigint;\n"
                           if r["column_attname"] else
                           "-- and the column it feeds: alter table <table> alter column <column> type bigint;\n")
                        + f"alter sequence {r['name']} as bigint;",
            data=r,
        ))
    if unreadable:
        schemas = dict.fromkeys(quote_ident(r["schema"]) for r in rows if not r["readable"])
        out.append(finding(
            check, Severity.SKIPPED,
            f"{plural(len(unreadable), 'sequence')} not readable by {ctx.current_user}",
            detail="cannot read the last value of: " + ", ".join(unreadable[:20]),
            remediation=f"grant select on all sequences in schema "
                        f"{', '.join(schemas)} to {quote_ident(ctx.current_user)};"
                        "  -- or grant pg_read_all_data",
            data={"sequences": unreadable},
        ))
    if not out:
        return [ok(check, f"no sequence has used {pct(t['warning'])} of its range ({len(rows)} checked)")]
    return out


register(Check(
    id="dead_tuples",
    title="Dead tuples",
    category="maintenance",
    description="Tables whose share of dead tuples (dead / (live + dead)) is at or above the threshold, "
                "with at least min_dead_tuples dead tuples.",
    why="Dead tuples are deleted or updated row versions not yet vacuumed: they slow scans, bloat tables "
        "and indexes, and mean autovacuum is not keeping up (or is switched off).",
    remediation="vacuum (analyze) <table>;",
    evaluate=_dead_tuples,
    thresholds={"warning": 0.2, "critical": 0.5, "min_dead_tuples": 1000},
    fixed_by="vacuum_analyze",
))

register(Check(
    id="vacuum_age",
    title="Vacuum age",
    category="maintenance",
    description="Tables with at least min_changes changes (dead + inserted tuples) not vacuumed for `warning` "
                "days (or never); critical when autovacuum is off server-wide.",
    why="Tables that change but are not vacuumed accumulate dead tuples, lose index-only scans (visibility "
        "map) and move towards transaction-ID wraparound.",
    remediation="vacuum (analyze) <table>;",
    evaluate=_vacuum_age,
    thresholds={"warning": 7.0, "critical": 30.0, "min_changes": 1000},
    fixed_by="vacuum_analyze",
))

register(Check(
    id="stale_statistics",
    title="Stale statistics",
    category="maintenance",
    description="Analyzed tables whose modified rows since the last analyze reach `warning` of their rows "
                "(at least min_changes).",
    why="The planner chooses joins and indexes from these statistics; stale ones give bad plans after bulk "
        "loads and deletes.",
    remediation="analyze <table>;",
    evaluate=_stale_statistics,
    thresholds={"warning": 0.2, "critical": 1.0, "min_changes": 1000},
    fixed_by="vacuum_analyze",
))

register(Check(
    id="never_analyzed",
    title="Never analyzed",
    category="maintenance",
    description="Tables with data (at least min_rows live rows, or a non-empty heap never vacuumed nor "
                "analyzed) that have never been analyzed.",
    why="Without statistics the planner assumes default selectivities: joins and filters on such a table "
        "get arbitrary plans.",
    remediation="analyze <table>;",
    evaluate=_never_analyzed,
    thresholds={"min_rows": 1},
    fixed_by="vacuum_analyze",
))

register(Check(
    id="xid_wraparound",
    title="Transaction ID wraparound",
    category="maintenance",
    description="Transaction-ID age of each database as a share of the 2^31 wraparound limit.",
    why="At the limit PostgreSQL stops accepting writes until a database-wide VACUUM completes: hours of "
        "downtime on a large database.",
    remediation="Find what holds the xmin horizon (long transactions: long_running_queries, "
                "idle_in_transaction; replication slots; prepared transactions), then\n"
                "  vacuum (freeze, verbose) <oldest table>;",
    evaluate=_wraparound("transaction-ID", "autovacuum_freeze_max_age"),
    thresholds={"warning": 0.5, "critical": 0.75},
))

register(Check(
    id="multixact_wraparound",
    title="Multixact ID wraparound",
    category="maintenance",
    description="Multixact-ID age of each database as a share of the 2^31 wraparound limit.",
    why="Multixact wraparound stops writes like transaction-ID wraparound; heavy foreign-key and "
        "SELECT … FOR SHARE traffic consumes multixacts fast.",
    remediation="vacuum (freeze, verbose) <oldest table>;",
    evaluate=_wraparound("multixact-ID", "autovacuum_multixact_freeze_max_age"),
    thresholds={"warning": 0.5, "critical": 0.75},
))

register(Check(
    id="sequence_exhaustion",
    title="Sequence exhaustion",
    category="maintenance",
    description="Share of its range each sequence has used, capped by the type of the column it feeds.",
    why="When a sequence (or the integer column behind it) runs out, every insert into the table fails.",
    remediation="alter table <table> alter column <column> type bigint; alter sequence <sequence> as bigint;",
    evaluate=_sequences,
    thresholds={"warning": 0.75, "critical": 0.9},
))


def _checkpoints(check, rows, t, ctx):
    r = rows[0]
    total = (r["timed"] or 0) + (r["requested"] or 0)
    detail = (f"{r['timed']:,} timed, {r['requested']:,} requested since {r['stats_reset']:%Y-%m-%d %H:%M}; "
              f"max_wal_size {r['max_wal_size']}, checkpoint_timeout {r['checkpoint_timeout']}")
    share = r["requested_share"]
    if total < (t["min_checkpoints"] or 0) or share is None or t["info"] is None or share < t["info"]:
        return [ok(check, detail, value=None if share is None else round(share, 3))]
    return [finding(
        check, Severity.INFO, f"{pct(share)} of checkpoints were requested, not timed", value=round(share, 3),
        threshold=t["info"],
        detail=detail + ". Frequent requested checkpoints mean max_wal_size is reached before checkpoint_timeout "
                        "(more full-page writes, I/O spikes) — unless they come from CREATE DATABASE, backups or "
                        "manual CHECKPOINTs.",
        remediation="If WAL volume is the cause, raise max_wal_size (on Supabase: a custom Postgres config).",
        data=r,
    )]


register(Check(
    id="checkpoints",
    title="Checkpoints",
    category="maintenance",
    description="Share of requested (not timed) checkpoints since the statistics reset; informational "
                "(reported as info at `info` share, from min_checkpoints checkpoints).",
    why="Checkpoints forced by WAL volume come in bursts of writes and full-page images; the fix is "
        "configuration, not an incident.",
    remediation="alter system set max_wal_size = '4GB'; select pg_reload_conf();  -- where you control the config",
    evaluate=_checkpoints,
    thresholds={"info": 0.5, "min_checkpoints": 10},
))
