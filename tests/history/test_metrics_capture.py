"""daily/capture_metrics' library: one snapshot per day, read-only on the target, never a reset."""

from __future__ import annotations

from datetime import date

import pytest

from pgrunbooks import db
from pgrunbooks.db import QUERY_MARKER_PREFIX
from pgrunbooks.findings import Severity
from pgrunbooks.history import capture
from pgrunbooks.targets import Target


@pytest.fixture
def clean_session(pg, clean_db):
    with db.connect(Target("test:clean", "dsn", pg.conninfo(clean_db)), runbook="test/capture") as session:
        yield session


def _stats_reset(pg, dbname):
    with pg.connect(dbname) as conn:
        return conn.execute("select stats_reset from extensions.pg_stat_statements_info").fetchone()[0]


def test_capture_stores_sizes_and_statements_without_resetting(pg, clean_db, clean_session, history_conn):
    before = _stats_reset(pg, clean_db)
    snap = capture.capture(clean_session, history_conn)
    assert _stats_reset(pg, clean_db) == before  # pg_stat_statements is never reset
    assert snap.tables > 5 and snap.statements > 0 and snap.statements_skipped is None
    row = history_conn.execute(
        "select database_bytes > 0, connections >= 1, cache_hit_ratio between 0 and 1, xid_age > 0,"
        " postmaster_start is not null, stats_reset is not null, wal_lsn is not null, database_name"
        " from pgrunbooks.snapshots where id = %s", (snap.id,)).fetchone()
    assert row == (True, True, True, True, True, True, True, clean_db)
    relations = {r[0] for r in history_conn.execute(
        "select relation from pgrunbooks.table_sizes where snapshot_id = %s", (snap.id,))}
    assert {"public.calls", "public.organizations", "auth.users"} <= relations
    own = history_conn.execute("select count(*) from pgrunbooks.statement_texts where strpos(query, %s) > 0",
                               (QUERY_MARKER_PREFIX,)).fetchone()[0]
    assert own == 0  # pgrunbooks' own statements are left out
    with pg.connect(clean_db) as target:  # nothing was written to the target
        assert target.execute("select to_regnamespace('pgrunbooks')").fetchone() == (None,)


def test_capture_is_idempotent_per_day(clean_session, history_conn):
    day = date(2026, 2, 3)
    first = capture.capture(clean_session, history_conn, day=day)
    second = capture.capture(clean_session, history_conn, day=day)
    assert (first.replaced, second.replaced) == (False, True)
    count, = history_conn.execute("select count(*) from pgrunbooks.snapshots where day = %s", (day,)).fetchone()
    tables, = history_conn.execute("select count(*) from pgrunbooks.table_sizes").fetchone()
    assert count == 1 and tables == second.tables  # the first snapshot's rows went with it


def test_capture_without_pg_stat_statements_says_why(history_db, history_conn):
    # the history database itself has no pg_stat_statements: a cheap target without it
    with db.connect(Target("test:bare", "dsn", history_db), runbook="test") as session:
        snap = capture.capture(session, history_conn)
    found = capture.findings(snap, "test-history")
    assert snap.statements == 0
    assert [(f.check_id, f.severity) for f in found] == [
        ("capture_metrics", Severity.OK), ("capture_metrics.statements", Severity.SKIPPED)]
    assert "create extension pg_stat_statements" in found[1].detail
