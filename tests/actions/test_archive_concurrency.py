"""archive against other sessions: a lock held while planning, two runs at once, a role under RLS (PostgreSQL 18 and 15)."""

from __future__ import annotations

import threading

import psycopg
import pytest

from pgrunbooks import audit
from pgrunbooks.actions import LockTimeoutError, PreconditionError, apply, plan_archive
from pgrunbooks.db import connect

CALLS = {"source": "public.calls", "archive": "public.call_archives", "older_than": "1 year"}


def session_for(pg, db, user="postgres"):
    return connect(pg.conninfo(db, user=user), runbook="archive_old_data", read_only=False)


def test_a_lock_held_while_planning_is_a_lock_timeout_with_its_hint_and_a_record(pg, clean_clone, audit_log):
    with psycopg.connect(pg.admin_conninfo(clean_clone)) as holder:
        holder.execute("lock table public.calls in access exclusive mode")
        with session_for(pg, clean_clone) as s:
            s.conn.execute("set lock_timeout = '300ms'")
            with pytest.raises(LockTimeoutError) as err:
                plan_archive(s, pairs=[CALLS], on_dependents="skip")
        holder.rollback()
    assert "lock_timeout" in err.value.message and "pg_blocking_pids" in err.value.hint
    record = audit.read(audit_log)[-1]
    assert record["outcome"] == "refused" and record["error"]["type"] == "LockTimeoutError"


def test_two_archives_of_the_same_table_at_once_the_second_refuses(pg, clean_clone, audit_log):
    with session_for(pg, clean_clone) as first, session_for(pg, clean_clone) as second:
        slow = plan_archive(first, pairs=[CALLS], on_dependents="skip", batch_size=200, pause=0.05, vacuum=False)
        other = plan_archive(second, pairs=[CALLS], on_dependents="skip", vacuum=False)
        assert slow.rows == other.rows > 1000
        results: list = []
        runner = threading.Thread(target=lambda: results.append(apply(slow, confirm=slow.confirm, progress=False)))
        runner.start()
        try:
            with pg.connect(clean_clone) as mon:
                while mon.execute("select count(*) from public.call_archives").fetchone()[0] == 0:
                    assert runner.is_alive()
            with pytest.raises(PreconditionError, match="another archive of public.calls is running") as err:
                apply(other, confirm=other.confirm, progress=False)
            assert str(first.conn.info.backend_pid) in err.value.message
        finally:
            runner.join(120)
    assert results and results[0].outcome == "applied" and results[0].objects[0]["moved"] == slow.rows
    outcomes = sorted(r["outcome"] for r in audit.read(audit_log) if r["outcome"] != "started")
    assert outcomes == ["applied", "refused"]


def test_a_role_under_row_level_security_is_told_why_it_sees_no_rows(pg, clean_clone, audit_log):
    role = "rls_archiver"
    with pg.connect(clean_clone) as conn:
        conn.execute("alter table public.calls enable row level security")
        conn.execute(f"create role {role} login")
        conn.execute(f"grant usage on schema public to {role}")
        conn.execute(f"grant select, delete on public.calls, public.recordings to {role}")
        conn.execute(f"grant select, insert on public.call_archives to {role}")
    try:
        with session_for(pg, clean_clone, user=role) as s:
            plan = plan_archive(s, pairs=[CALLS], on_dependents="skip")
        assert plan.rows == 0
        blocker = next(b for b in plan.blockers if "row-level security" in b)
        assert "public.calls" in blocker and role in blocker and "BYPASSRLS" in blocker
    finally:
        with pg.connect(clean_clone) as conn:
            conn.execute(f"drop owned by {role}")
            conn.execute(f"drop role {role}")
