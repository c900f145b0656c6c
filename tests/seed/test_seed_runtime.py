"""Runtime faults show up in pg_stat_activity and clean up after themselves."""

from __future__ import annotations

import time

import psycopg
import pytest
from seed_helpers import scalar

from pgrunbooks.seed import RUNTIME_FAULTS, RUNTIME_FINDS, runtime


def _activity(conn, pids):
    return {
        r[0]: r[1:]
        for r in conn.execute(
            "select pid, state, application_name, wait_event_type, query from pg_stat_activity"
            " where pid = any(%s)",
            (list(pids),),
        )
    }


def _wait_gone(conn, pids, timeout=10.0):
    deadline = time.monotonic() + timeout
    while _activity(conn, pids):
        assert time.monotonic() < deadline, f"sessions {pids} still there"
        time.sleep(0.05)


def test_runtime_fault_catalogue():
    assert set(RUNTIME_FAULTS) == set(RUNTIME_FINDS)
    assert RUNTIME_FINDS["blocking_chain"] == ("blocking_locks",)


def test_long_running_query(pg, clean_db):
    conninfo = pg.conninfo(clean_db)
    with pg.connect(clean_db) as mon:
        with runtime.long_running_query(conninfo, seconds=600) as pid:
            state, app, _, query = _activity(mon, [pid])[pid]
            assert state == "active" and app == "victorysync/api" and "pg_sleep" in query
        _wait_gone(mon, [pid])


def test_runtime_fault_survives_its_session_being_terminated(pg, clean_db):
    with pg.connect(clean_db) as mon:
        with runtime.long_running_query(pg.conninfo(clean_db)) as pid:
            assert scalar(mon, "select pg_terminate_backend(%s)", (pid,))
        _wait_gone(mon, [pid])


def test_idle_in_transaction_holds_a_row_lock(pg, clean_db):
    with pg.connect(clean_db) as mon:
        with runtime.idle_in_transaction(pg.conninfo(clean_db)) as pid:
            assert _activity(mon, [pid])[pid][0] == "idle in transaction"
            assert scalar(
                mon, "select count(*) from pg_locks where pid = %s and locktype = 'transactionid'", (pid,)
            ) == 1
            with mon.transaction(force_rollback=True):
                mon.execute("set local lock_timeout = '100ms'")
                with pytest.raises(psycopg.errors.LockNotAvailable):
                    mon.execute("select 1 from public.organizations for update")
        _wait_gone(mon, [pid])


def test_blocking_chain(pg, clean_db):
    with pg.connect(clean_db) as mon:
        before = mon.execute("select id, updated_at from public.organizations order by id").fetchall()
        with runtime.blocking_chain(pg.conninfo(clean_db), depth=3) as pids:
            assert len(pids) == 3
            activity = _activity(mon, pids)
            assert activity[pids[0]][0] == "idle in transaction"
            assert all(activity[p][2] == "Lock" for p in pids[1:])
            assert pids[0] in scalar(mon, "select pg_blocking_pids(%s)", (pids[1],))
            blockers = scalar(mon, "select pg_blocking_pids(%s)", (pids[2],))
            assert blockers and set(blockers) <= set(pids[:2])
        _wait_gone(mon, pids)
        after = mon.execute("select id, updated_at from public.organizations order by id").fetchall()
    assert after == before  # no waiter's update committed


def test_idle_connections(pg, clean_db):
    with pg.connect(clean_db) as mon:
        with runtime.idle_connections(pg.conninfo(clean_db), 5) as pids:
            assert len(set(pids)) == 5
            assert {a[0] for a in _activity(mon, pids).values()} == {"idle"}
        _wait_gone(mon, pids)
