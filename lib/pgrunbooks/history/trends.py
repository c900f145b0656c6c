"""What monthly/database_trends reads from the history: sizes over time, the disk forecast,
statements this month against last month, findings per week, restore drills."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pandas as pd
import psycopg
from psycopg.rows import dict_row

from pgrunbooks.db import Session
from pgrunbooks.findings import Finding, Severity
from pgrunbooks.history import forecast, series
from pgrunbooks.history.capture import measure
from pgrunbooks.history.period import Month
from pgrunbooks.history.store import target_key
from pgrunbooks.history.synthetic import seed_synthetic

#: a history shorter than this is "empty" for the synthetic seed, and too short to forecast from
MIN_HISTORY_DAYS = 30


def _rows(history: psycopg.Connection, query: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    with history.cursor(row_factory=dict_row) as cur:
        cur.execute(query, params)
        return cur.fetchall()


def ensure_history(session: Session, history: psycopg.Connection, *, synthetic_if_empty: bool) -> str:
    """Say what history the target has; on the sandbox, seed the synthetic one when it is short and asked.

    Synthetic history is written only for a ``local`` target (the sandbox): a production target
    with no history says so and is never given invented data.
    """
    key = target_key(session.target)
    (old,), = history.execute(
        "select count(*) from pgrunbooks.snapshots where target = %s and day < %s",
        (key, datetime.now(timezone.utc).date() - timedelta(days=MIN_HISTORY_DAYS))).fetchall()
    note = ""
    if not old and synthetic_if_empty and session.target.kind == "local":
        written = seed_synthetic(history, key, current=measure(session))
        note = f"seeded {written} synthetic daily snapshots (sandbox only); "
    (count, first, last, synthetic), = history.execute(
        "select count(*), min(day), max(day), count(*) filter (where synthetic)"
        " from pgrunbooks.snapshots where target = %s", (key,)).fetchall()
    if not count:
        return note + f"no snapshot of {key} yet: schedule daily/capture_metrics (the daily suite runs it)"
    return note + f"{count} daily snapshots of {key}, {first} to {last} ({synthetic} synthetic)"


def database_series(history: psycopg.Connection, target: str, since: datetime) -> pd.DataFrame:
    """Daily database and cluster sizes since ``since``."""
    rows = _rows(history, "select s.day, s.taken_at, s.database_bytes, s.cluster_bytes, s.synthetic"
                          " from pgrunbooks.snapshots s where s.target = %(t)s and s.taken_at >= %(since)s"
                          " order by s.taken_at", {"t": target_key(target), "since": since})
    return pd.DataFrame(rows, columns=["day", "taken_at", "database_bytes", "cluster_bytes", "synthetic"])


def table_growth(history: psycopg.Connection, target: str, months: list[Month]) -> pd.DataFrame:
    """Each relation's size in the last snapshot of each month (month, relation, total_bytes)."""
    rows = _rows(history, """
        with last as (
          select distinct on (pg_catalog.date_trunc('month', s.taken_at, 'UTC')) s.id,
                 pg_catalog.to_char(s.taken_at at time zone 'UTC', 'YYYY-MM') as month
          from pgrunbooks.snapshots s
          where s.target = %(t)s and s.taken_at >= %(start)s and s.taken_at < %(end)s
          order by pg_catalog.date_trunc('month', s.taken_at, 'UTC'), s.taken_at desc
        )
        select l.month, t.relation, t.total_bytes
        from last l join pgrunbooks.table_sizes t on t.snapshot_id = l.id
        order by l.month, t.relation""",
        {"t": target_key(target), "start": months[0].start, "end": months[-1].end})
    return pd.DataFrame(rows, columns=["month", "relation", "total_bytes"])


def growth_summary(frame: pd.DataFrame, limit: int = 15) -> pd.DataFrame:
    """Per relation: size in the first and the last month, growth in bytes and percent; biggest growth first."""
    if frame.empty:
        return pd.DataFrame(columns=["relation", "first_month", "first_bytes", "last_bytes", "growth_bytes", "growth_pct"])
    ordered = frame.sort_values(["relation", "month"])
    first = ordered.groupby("relation").first()
    last = ordered.groupby("relation").last()
    out = pd.DataFrame({"first_month": first["month"], "first_bytes": first["total_bytes"],
                        "last_bytes": last["total_bytes"]})
    out["growth_bytes"] = out["last_bytes"] - out["first_bytes"]
    out["growth_pct"] = (100 * out["growth_bytes"] / out["first_bytes"].where(out["first_bytes"] > 0)).round(1)
    return out.reset_index().sort_values(["growth_bytes", "relation"], ascending=[False, True]).head(limit)


def fit_trend(frame: pd.DataFrame, column: str, trend_days: int) -> tuple[forecast.LinearFit, pd.DataFrame] | None:
    """The linear fit of ``column`` over the last ``trend_days`` days (x = days since the first day shown)."""
    data = frame.dropna(subset=[column])
    if data.empty:
        return None
    origin = data["taken_at"].min()
    recent = data[data["taken_at"] >= data["taken_at"].max() - pd.Timedelta(days=trend_days)]
    if len(recent) < 3:
        return None
    xs = [(t - origin).total_seconds() / 86400 for t in recent["taken_at"]]
    try:
        return forecast.fit_linear(xs, [float(v) for v in recent[column]]), recent
    except ValueError:
        return None


def disk_finding(result: forecast.DiskForecast | None, *, warning_days: float, critical_days: float,
                 reason: str = "") -> Finding:
    """A ``disk_forecast`` finding: critical/warning when the band's earliest day is that close."""
    if result is None:
        return Finding("disk_forecast", Severity.SKIPPED, "Days until the disk is full", "database",
                       detail=reason or f"fewer than 3 snapshots in the trend window (need {MIN_HISTORY_DAYS} days)",
                       remediation="schedule daily/capture_metrics (the daily suite runs it)")
    soonest = result.earliest if result.earliest is not None else result.days
    severity = Severity.OK
    if soonest is not None and soonest <= critical_days:
        severity = Severity.CRITICAL
    elif soonest is not None and soonest <= warning_days:
        severity = Severity.WARNING
    return Finding("disk_forecast", severity, "Days until the disk is full", "database",
                   value=None if soonest is None else round(soonest, 1),
                   threshold=f"warning {warning_days:g} d, critical {critical_days:g} d (earliest day in the band)",
                   detail=result.describe(),
                   remediation="archive old rows (monthly/archive_old_data), remove bloat (weekly/maintenance_status) "
                               "or grow the disk before the earliest day")


def top_statements(history: psycopg.Connection, target: str, month: Month, limit: int = 10) -> pd.DataFrame:
    """The statements taking the most time in ``month`` (from snapshot deltas), against the month before."""
    key = target_key(target)
    this = series.statement_period(history, key, month.start, month.end)
    last = series.statement_period(history, key, month.shift(-1).start, month.shift(-1).end)
    texts = {r["queryid"]: r["query"] for r in _rows(
        history, "select queryid, query from pgrunbooks.statement_texts where target = %(t)s and queryid = any(%(ids)s)",
        {"t": key, "ids": list(this) + list(last)})}
    ranked = sorted(this.items(), key=lambda kv: (-kv[1]["total_exec_time"], kv[0]))[:limit]
    rows = []
    for queryid, now in ranked:
        before = last.get(queryid, {})
        before_ms = before.get("total_exec_time")
        rows.append({
            "queryid": str(queryid), "query": (texts.get(queryid) or "")[:200],
            "calls": int(now["calls"]), "total_s": round(now["total_exec_time"] / 1000, 1),
            "mean_ms": round(now["total_exec_time"] / now["calls"], 3) if now["calls"] else None,
            "last_month_total_s": None if before_ms is None else round(before_ms / 1000, 1),
            "change_pct": round(100 * (now["total_exec_time"] - before_ms) / before_ms, 1) if before_ms else None,
        })
    return pd.DataFrame(rows, columns=["queryid", "query", "calls", "total_s", "mean_ms", "last_month_total_s",
                                       "change_pct"])


def findings_per_week(history: psycopg.Connection, target: str, since: datetime) -> pd.DataFrame:
    """Distinct findings (by key) per ISO week and severity, from every stored suite run of ``target``."""
    rows = _rows(history, """
        select pg_catalog.date_trunc('week', r.started_at, 'UTC')::date as week, f.severity,
               count(distinct f.key) as findings
        from pgrunbooks.runs r join pgrunbooks.run_findings f on f.run_id = r.id
        where r.target = %(t)s and r.started_at >= %(since)s and f.severity <> 'ok'
        group by 1, 2 order by 1, 2""", {"t": target_key(target), "since": since})
    return pd.DataFrame(rows, columns=["week", "severity", "findings"])


def drills(history: psycopg.Connection, target: str, since: datetime) -> pd.DataFrame:
    """Restore and PITR drills of ``target`` since ``since``, newest first."""
    rows = _rows(history, """
        select d.started_at, d.kind, d.verdict, d.rto_seconds, d.rpo_seconds, d.detail::text as detail
        from pgrunbooks.drills d where d.target = %(t)s and d.started_at >= %(since)s
        order by d.started_at desc, d.id desc""", {"t": target_key(target), "since": since})
    return pd.DataFrame(rows, columns=["started_at", "kind", "verdict", "rto_seconds", "rpo_seconds", "detail"])
