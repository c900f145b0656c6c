"""The sandbox's synthetic history: deterministic, 13 months, real days kept, and the trends
built on it (statement deltas across its planted crash and reset, the forecast, table growth)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from pgrunbooks import db
from pgrunbooks.findings import Severity
from pgrunbooks.history import forecast, period, synthetic, trends
from pgrunbooks.history.series import boundaries, statement_period
from pgrunbooks.targets import Target

END = date(2026, 6, 15)
FIRST = END - timedelta(days=synthetic.SYNTHETIC_DAYS)


def _dump(conn):
    return conn.execute(
        "select s.day, s.database_bytes, s.stats_reset, sum(t.total_bytes),"
        " (select sum(st.calls) from pgrunbooks.statements st where st.snapshot_id = s.id)"
        " from pgrunbooks.snapshots s left join pgrunbooks.table_sizes t on t.snapshot_id = s.id"
        " group by s.id order by s.day").fetchall()


def test_synthetic_history_is_deterministic_and_keeps_real_days(history_conn, pg):
    real_day = END - timedelta(days=3)
    history_conn.execute(
        "insert into pgrunbooks.snapshots (target, day, taken_at, server_version, database_name, postmaster_start,"
        " database_bytes, connections, max_connections) values ('local', %s, %s::date + time '12:00', 180000,"
        " 'victorysync', now(), 1, 1, 100)", (real_day, real_day))
    written = synthetic.seed_synthetic(history_conn, "local", end=END)
    assert written == synthetic.SYNTHETIC_DAYS - 1  # the real day is kept
    assert synthetic.seed_synthetic(history_conn, "local", end=END) == 0  # idempotent
    first = _dump(history_conn)
    history_conn.execute("delete from pgrunbooks.snapshots where synthetic")
    synthetic.seed_synthetic(history_conn, "local", end=END)
    assert _dump(history_conn) == first  # the same rows every time
    days = [row[0] for row in first]
    assert days[0] == FIRST and days[-1] == END - timedelta(days=1) and len(days) == synthetic.SYNTHETIC_DAYS


def test_statement_deltas_over_the_synthetic_crash_and_reset_equal_the_daily_calls(history_conn):
    synthetic.seed_synthetic(history_conn, "local", end=END)
    plan = synthetic._plan(None, FIRST, synthetic.SYNTHETIC_DAYS, synthetic.SEED)
    queryid = synthetic.STATEMENTS[0][0]
    truth = sum(st["calls_today"] for snap in plan[1:] for st in snap["statements"] if st["queryid"] == queryid)
    start, end = period.Month(FIRST.year, FIRST.month).start, period.Month(END.year, END.month).end
    total = statement_period(history_conn, "local", start, end)
    assert total[queryid]["calls"] == truth
    kinds = [b["what"] for b in boundaries(history_conn, "local", start, end)]
    assert kinds == ["pg_stat_statements reset", "pg_stat_statements reset", "server restart"]


def test_trends_on_the_synthetic_history(history_conn):
    synthetic.seed_synthetic(history_conn, "local", end=END)
    month = period.Month(2026, 5)
    daily = trends.database_series(history_conn, "local", month.back(13)[0].start)
    fit, recent = trends.fit_trend(daily, "cluster_bytes", 90)
    assert len(recent) >= 89 and fit.slope > 0
    small_disk = forecast.days_until_full(fit, daily["cluster_bytes"].iloc[-1] * 1.02)
    assert trends.disk_finding(small_disk, warning_days=90, critical_days=30).severity is Severity.CRITICAL
    roomy = forecast.days_until_full(fit, 8e12)
    assert trends.disk_finding(roomy, warning_days=90, critical_days=30).severity is Severity.OK
    growth = trends.growth_summary(trends.table_growth(history_conn, "local", month.back(13)))
    assert (growth["growth_bytes"] > 0).all() and "public.calls" in set(growth["relation"])
    weeks = trends.findings_per_week(history_conn, "local", month.back(13)[0].start)
    per_severity = weeks.groupby("severity")["findings"].max().to_dict()
    assert per_severity == {"critical": 1, "info": 1, "warning": 2}  # distinct keys a week, not one per run
    drills = trends.drills(history_conn, "local", month.back(13)[0].start)
    assert len(drills) == 13 and set(drills["verdict"]) <= {"pass", "fail"}  # one restore drill a month
    top = trends.top_statements(history_conn, "local", month, limit=3)
    assert list(top["queryid"])[0] == str(synthetic.STATEMENTS[0][0])
    assert top["last_month_total_s"].notna().all()


def test_only_a_sandbox_target_gets_synthetic_history(pg, clean_db, history_conn):
    conninfo = pg.conninfo(clean_db)
    with db.connect(Target("service:prod", "service", conninfo), runbook="test") as session:
        note = trends.ensure_history(session, history_conn, synthetic_if_empty=True)
    assert "no snapshot" in note
    with db.connect(Target("local", "local", conninfo), runbook="test") as session:
        note = trends.ensure_history(session, history_conn, synthetic_if_empty=True)
    assert note.startswith(f"seeded {synthetic.SYNTHETIC_DAYS} synthetic")
    count, = history_conn.execute("select count(*) from pgrunbooks.snapshots where target = 'service:prod'").fetchone()
    assert count == 0
