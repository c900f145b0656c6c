"""Statement deltas between snapshots stay right across a pg_stat_statements reset, a clean server
restart (counters kept) and a crash (counters lost), on a private server started for this module."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import psycopg
import pytest

from pgrunbooks import db
from pgrunbooks.history import capture, series
from pgrunbooks.sandbox import ADMIN_USER, Sandbox
from pgrunbooks.targets import Target

QUERY = "select count(*) from pg_catalog.pg_class where relkind = %s"
DAY0 = date(2026, 1, 1)


class Private:
    """A throwaway server of the version under test, and the operations the scenario needs."""

    def __init__(self, pg_bin: Path):
        self.home = Path(tempfile.mkdtemp(prefix="pgrb-deltas-"))
        self.home.chmod(0o755)
        self.sandbox = Sandbox(self.home, pg_bin=pg_bin, no_sync=True)  # a throwaway cluster: skip initdb's fsync
        self.sandbox.start()
        self.conninfo = self.sandbox.status().conninfo("postgres", ADMIN_USER)
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            conn.execute("create extension if not exists pg_stat_statements")
        self.target = Target("deltas-test", "dsn", self.conninfo)

    def run(self, times: int) -> None:
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            for _ in range(times):
                conn.execute(QUERY, ("r",))

    def reset_statements(self) -> None:
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            conn.execute("select pg_stat_statements_reset()")

    def restart(self) -> None:
        self.sandbox.stop()
        self.sandbox.start()

    def crash(self) -> None:
        """A backend killed by SIGKILL: the postmaster restarts every process and re-initialises shared
        memory (statistics lost, pg_stat_statements empty), as after a segfault or the OOM killer."""
        victim = psycopg.connect(self.conninfo, autocommit=True)
        os.kill(victim.info.backend_pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            time.sleep(0.1)
            try:
                with psycopg.connect(self.conninfo, connect_timeout=2) as conn:
                    if conn.execute("select pg_catalog.pg_is_in_recovery()").fetchone() == (False,):
                        break
            except psycopg.OperationalError:
                continue  # still recovering
        victim.close()

    def close(self) -> None:
        self.sandbox.stop()
        shutil.rmtree(self.home, ignore_errors=True)


@pytest.fixture(scope="module")
def private(pg):
    server = Private(pg.sandbox.pg_bin)
    yield server
    server.close()


def _snapshot(server: Private, history, day: int) -> capture.Snapshot:
    with db.connect(server.target, runbook="test") as session:
        return capture.capture(session, history, day=DAY0 + timedelta(days=day))


def _calls_in(history, snap: capture.Snapshot, queryid: int) -> float:
    """The activity series attributes to the interval ending at ``snap``."""
    totals = series.statement_period(history, "deltas-test", snap.taken_at, snap.taken_at + timedelta(microseconds=1))
    return totals[queryid]["calls"]


def _queryid(history) -> int:
    (queryid,), = history.execute(
        "select queryid from pgrunbooks.statement_texts where target = 'deltas-test' and query like %s",
        ("select count(*) from pg_catalog.pg_class where relkind = $1%",)).fetchall()
    return queryid


def test_deltas_across_reset_clean_restart_and_crash(private, history_conn):
    private.run(5)
    _snapshot(private, history_conn, 0)
    private.run(3)
    second = _snapshot(private, history_conn, 1)
    queryid = _queryid(history_conn)
    assert _calls_in(history_conn, second, queryid) == 3

    # A reset, then more calls than before: a naive difference would say 12 - 8 = 4.
    private.reset_statements()
    private.run(12)
    after_reset = _snapshot(private, history_conn, 2)
    assert _calls_in(history_conn, after_reset, queryid) == 12

    # A clean restart keeps pg_stat_statements' counters: the delta is a plain difference.
    private.restart()
    private.run(4)
    after_restart = _snapshot(private, history_conn, 3)
    assert _calls_in(history_conn, after_restart, queryid) == 4

    # A crash loses them: 30 calls since, not 30 - 16.
    private.crash()
    private.run(30)
    after_crash = _snapshot(private, history_conn, 4)
    assert _calls_in(history_conn, after_crash, queryid) == 30

    start = second.taken_at
    seen = [b["what"] for b in series.boundaries(history_conn, "deltas-test", start, after_crash.taken_at + timedelta(seconds=1))]
    # (a crash restarts the processes, not the postmaster: its start time stays)
    assert seen == ["pg_stat_statements reset", "server restart", "pg_stat_statements reset"]
    # The whole period: 3 + 12 + 4 + 30 (the first snapshot is the baseline).
    total = series.statement_period(history_conn, "deltas-test", start, after_crash.taken_at + timedelta(seconds=1))
    assert total[queryid]["calls"] == 49


def test_a_falling_counter_restarts_the_entry_without_a_global_reset():
    previous = [{"queryid": 1, "userid": 10, "dbid": 5, "calls": 50, "total_exec_time": 100.0, "rows": 50,
                 "stats_since": None, **dict.fromkeys(series.COUNTERS[3:], 0)}]
    current = [dict(previous[0], calls=7, total_exec_time=9.0, rows=7),
               {**previous[0], "queryid": 2, "calls": 4, "total_exec_time": 2.0, "rows": 4}]
    deltas = series.statement_deltas(previous, current)
    assert deltas[(1, 10, 5)]["calls"] == 7  # evicted and re-created (pg_stat_statements.max), or reset alone
    assert deltas[(2, 10, 5)]["calls"] == 4  # new entry: everything it counted


def test_a_changed_stats_since_restarts_the_entry():
    from datetime import datetime, timezone

    t0, t1 = datetime(2026, 1, 1, tzinfo=timezone.utc), datetime(2026, 1, 2, tzinfo=timezone.utc)
    row = {"queryid": 1, "userid": 10, "dbid": 5, "calls": 50, "total_exec_time": 100.0, "rows": 50,
           **dict.fromkeys(series.COUNTERS[3:], 0)}
    deltas = series.statement_deltas([dict(row, stats_since=t0)], [dict(row, calls=60, stats_since=t1)])
    assert deltas[(1, 10, 5)]["calls"] == 60  # PostgreSQL 17+: reset per entry, counters higher than before
