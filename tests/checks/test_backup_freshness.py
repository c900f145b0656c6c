"""backup_freshness against real PostgreSQL (18 and 15): a dedicated tiny server with archive_mode on whose
archive_command fails (``false``) is flagged critical naming the segment; the same server once its
archive_command works (reloaded, no restart) is ok. The shared test servers run with archive_mode off:
there the check is skipped, saying what to check in the Supabase dashboard instead."""

from __future__ import annotations

import time

import psycopg
from psycopg import sql

from pgrunbooks import checks
from pgrunbooks.backup.pitr import archiving_server
from pgrunbooks.db import connect
from pgrunbooks.findings import Severity
from pgrunbooks.sandbox import ADMIN_USER

WATCHER = "freshness_watcher"  # no privileges at all: the check needs none


def _run(conninfo: str) -> list:
    with connect(conninfo, runbook="test/backup_freshness") as session:
        return checks.run_checks(session, ids=["backup_freshness"])


def _wait(conn, query: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not conn.execute(query).fetchone()[0]:
        assert time.monotonic() < deadline, f"timed out waiting for: {query}"
        time.sleep(0.05)


def test_failing_archiver_is_critical_and_a_working_one_is_ok(pg):
    with archiving_server(pg.sandbox.pg_bin, archive_command="false") as server:
        with psycopg.connect(server.conninfo("postgres"), autocommit=True) as conn:
            conn.execute(f"create role {WATCHER} login")
            conn.execute("create table wal_maker as select pg_catalog.generate_series(1, 1000) as n")
            conn.execute("select pg_catalog.pg_switch_wal()")
            _wait(conn, "select failed_count > 0 from pg_catalog.pg_stat_archiver")
            watcher = server.sandbox.conninfo("postgres", WATCHER)
            failing = _run(watcher)
            conn.execute(sql.SQL("alter system set archive_command = {}").format(
                sql.Literal(f"cp %p {server.archive}/%f")))
            conn.execute("select pg_catalog.pg_reload_conf()")
            _wait(conn, "select last_archived_time > last_failed_time from pg_catalog.pg_stat_archiver")
            working = _run(watcher)
    [bad] = failing
    assert bad.severity is Severity.CRITICAL and bad.object == "archiver"
    assert "failing" in bad.title and bad.data["last_failed_wal"] in bad.title and bad.value >= 1
    assert [f.severity for f in working] == [Severity.OK], working
    assert "0 failures" not in working[0].detail  # failures stay counted since the reset…
    assert working[0].data["failing"] is False  # …but the latest attempt succeeded


def test_archiving_off_is_skipped_with_what_to_check_in_the_dashboard(pg, clean_db):
    with pg.connect(clean_db, user=ADMIN_USER) as conn:
        assert conn.execute("show archive_mode").fetchone()[0] == "off"
    [f] = _run(pg.conninfo(clean_db))
    assert f.severity is Severity.SKIPPED
    assert "archive_mode is off" in f.detail and "Dashboard" in f.detail and "Backups" in f.detail
