"""terminate_sessions: real sessions cancelled or terminated; protected ones survive (PostgreSQL 18 and 15)."""

from __future__ import annotations

import contextlib
import time

import psycopg
import pytest

from pgrunbooks import audit
from pgrunbooks.actions import ConfirmationError, apply, plan_terminate
from pgrunbooks.db import connect
from pgrunbooks.errors import UsageError
from pgrunbooks.seed.runtime import idle_in_transaction, long_running_query

APPS = ["victorysync/%"]


@pytest.fixture
def runbook_session(pg, clean_db):
    with connect(pg.conninfo(clean_db), runbook="terminate_sessions", read_only=False) as s:
        yield s


@contextlib.contextmanager
def superuser_idle_in_transaction(pg, db):
    """A superuser's session, idle in a transaction, with an application name the filters match."""
    conn = psycopg.connect(pg.admin_conninfo(db), application_name="victorysync/admin")
    try:
        conn.execute("select 1")
        yield conn
    finally:
        with contextlib.suppress(Exception):
            conn.rollback()
        conn.close()


def alive(pg, db, pid) -> bool:
    with pg.connect(db) as conn:
        return conn.execute("select exists (select from pg_stat_activity where pid = %s)", (pid,)).fetchone()[0]


def activity(pg, db, pid):
    with pg.connect(db) as conn:
        return conn.execute("select state, query from pg_stat_activity where pid = %s", (pid,)).fetchone()


def test_idle_in_transaction_and_long_query_stopped_protected_sessions_survive(pg, clean_db, runbook_session, audit_log):
    s = runbook_session
    with idle_in_transaction(pg.conninfo(clean_db)) as idle_pid, long_running_query(
        pg.conninfo(clean_db, user="authenticator")
    ) as long_pid, superuser_idle_in_transaction(pg, clean_db) as admin:
        admin_pid = admin.info.backend_pid
        time.sleep(0.6)
        plan = plan_terminate(
            s, states=["active", "idle in transaction"], min_duration="0.5 seconds", applications=APPS, grace_period=1
        )
        assert sorted(plan.confirm) == sorted([idle_pid, long_pid])
        rows = {o["pid"]: o for o in plan.objects}
        assert "pg_sleep" in rows[long_pid]["query"], "the dry run shows each target's query"
        assert rows[admin_pid]["action"].startswith("excluded: superuser")
        assert s.backend_pid not in rows
        assert alive(pg, clean_db, idle_pid) and activity(pg, clean_db, long_pid)[0] == "active", "a plan changes nothing"

        result = apply(plan, confirm=plan.confirm, progress=False)

        outcomes = {o["pid"]: o["outcome"] for o in result.objects}
        assert outcomes[long_pid].startswith("cancelled"), outcomes
        assert outcomes[idle_pid] == "terminated", "cancel does not end an idle transaction: terminated after the grace period"
        assert result.ok
        assert not alive(pg, clean_db, idle_pid)
        state = activity(pg, clean_db, long_pid)
        assert state is None or state[0] != "active" or "pg_sleep" not in state[1]
        assert admin.execute("select 1").fetchone() == (1,), "the superuser's session survived"
        assert s.scalar("select 1") == 1, "the runbook's own session survived"
    last = audit.read(audit_log)[-1]
    assert last["outcome"] == "applied" and last["action"] == "terminate_sessions"


def test_terminate_directly_when_asked(pg, clean_db, runbook_session):
    with long_running_query(pg.conninfo(clean_db), application_name="victorysync/report") as pid:
        plan = plan_terminate(runbook_session, states="active", min_duration="0", applications="victorysync/report", mode="terminate")
        assert plan.confirm == [pid]
        result = apply(plan, confirm=str(pid))
        assert result.objects[0]["outcome"] == "terminated"
        assert not alive(pg, clean_db, pid)


def test_wrong_confirm_refuses_and_signals_nothing(pg, clean_db, runbook_session, audit_log):
    with long_running_query(pg.conninfo(clean_db)) as pid:
        plan = plan_terminate(runbook_session, states=["active"], min_duration="0", applications=APPS, mode="terminate")
        for wrong in (None, [], [pid, pid + 1], len(plan.confirm) + 1):
            with pytest.raises(ConfirmationError):
                apply(plan, confirm=wrong)
        assert activity(pg, clean_db, pid)[0] == "active"
    assert {r["outcome"] for r in audit.read(audit_log)} == {"refused"}


def test_a_session_that_recovered_since_the_plan_is_left_alone(pg, clean_db, runbook_session):
    conn = psycopg.connect(pg.conninfo(clean_db), application_name="victorysync/worker")
    try:
        conn.execute("select 1 from public.organizations limit 1 for update")
        time.sleep(0.2)
        plan = plan_terminate(runbook_session, idle_in_transaction=True, min_duration="0.1 seconds", applications=APPS)
        assert plan.confirm == [conn.info.backend_pid]
        conn.commit()  # the worker finished on its own
        result = apply(plan, confirm=plan.confirm, progress=False)
        assert result.objects[0]["outcome"].startswith("no longer matches")
        assert conn.execute("select 1").fetchone() == (1,)
    finally:
        conn.close()


def test_duration_filter_uses_query_start_and_state_change(pg, clean_db, runbook_session):
    with long_running_query(pg.conninfo(clean_db)) as pid:
        assert plan_terminate(runbook_session, states=["active"], min_duration="1 hour", applications=APPS).confirm == []
        time.sleep(0.3)
        assert pid in plan_terminate(runbook_session, states=["active"], min_duration="0.2 seconds", applications=APPS).confirm


@pytest.mark.parametrize(
    "kwargs",
    [
        {},  # no filter at all: refuses to select every session
        {"states": ["running"]},
        {"states": ["active"], "min_duration": "5 minutes'; select pg_terminate_backend(pg_backend_pid()); --"},
        {"states": ["active"], "mode": "kill -9"},
        {"pids": ["1; drop table x"]},
    ],
)
def test_bad_filters_are_rejected(runbook_session, kwargs):
    with pytest.raises(UsageError):
        plan_terminate(runbook_session, **kwargs)
    assert runbook_session.scalar("select 1") == 1
