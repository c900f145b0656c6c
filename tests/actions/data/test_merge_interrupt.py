"""merge_organizations under fire (PostgreSQL 18 and 15): kill -9 mid-transaction, writers racing the merge.

Both tests hold a SHARE lock on ``webhook_events`` (the last table the merge moves) from a test
session, so the merge stops inside its transaction with every other table already moved: a
deterministic "mid-apply", no sleeps guessing at timing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import psycopg
import pytest

from pgrunbooks import audit
from pgrunbooks.actions import apply
from pgrunbooks.actions.checksum import database_checksum
from pgrunbooks.actions.data.merge_organizations import plan_merge_organizations
from pgrunbooks.db import connect

FROM, INTO = "blue-hvac-2", "harbor-catering-4"
HOLD = "lock table public.webhook_events in share mode"

RUN_SCRIPT = """
import sys
from pgrunbooks.actions import apply
from pgrunbooks.actions.data.merge_organizations import plan_merge_organizations
from pgrunbooks.db import connect
s = connect(sys.argv[1], runbook="merge_kill", read_only=False)
plan = plan_merge_organizations(s, sys.argv[2], sys.argv[3], lock_timeout="30s")
print("planned", plan.rows, flush=True)
apply(plan, confirm=plan.confirm, progress=False)
print("done", flush=True)
"""


def _wait_for(conn, query: str, params=(), timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not conn.execute(query, params).fetchone()[0]:
        assert time.monotonic() < deadline, f"timed out waiting for: {query}"
        time.sleep(0.02)


WAITING = ("select count(*) from pg_stat_activity where application_name = %s and wait_event_type = 'Lock'")


def test_kill_9_during_apply_leaves_nothing_half_done(pg, merge_db, tmp_path):
    with pg.connect(merge_db) as conn:
        before = database_checksum(conn, ("public",))
    log = tmp_path / "kill-audit.jsonl"
    hold = pg.connect(merge_db, autocommit=False)
    hold.execute(HOLD)
    proc = subprocess.Popen([sys.executable, "-c", RUN_SCRIPT, pg.conninfo(merge_db), FROM, INTO],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PGRUNBOOKS_AUDIT_LOG=str(log)))
    try:
        with pg.connect(merge_db) as mon:
            _wait_for(mon, WAITING, ("pgrunbooks/merge_kill",))  # mid-transaction: the other tables are moved
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
            hold.rollback()  # the orphaned backend gets its lock, then finds its client gone and rolls back
            _wait_for(mon, "select count(*) = 0 from pg_stat_activity where application_name = 'pgrunbooks/merge_kill'")
            after = database_checksum(mon, ("public",))
    finally:
        hold.close()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert after == before, "nothing half-done: every table as it was, B still there"
    assert [r["outcome"] for r in audit.read(log)] == ["started"], "a killed run leaves its started record"


def _writer(conninfo: str, statement: str, params: tuple, outcome: dict) -> None:
    """One application insert into B, in its own autocommit transaction."""
    try:
        with psycopg.connect(conninfo, autocommit=True, application_name="app_writer") as conn:
            outcome["id"] = conn.execute(statement, params).fetchone()[0]
    except psycopg.Error as exc:
        outcome["error"] = exc


def test_inserts_racing_the_merge_are_not_left_behind(pg, merge_db, audit_log):
    with pg.connect(merge_db) as conn:
        from_id = conn.execute("select id from public.organizations where slug = %s", (FROM,)).fetchone()[0]
    hold = pg.connect(merge_db, autocommit=False)
    hold.execute(HOLD)
    merged: dict = {}

    def merge() -> None:
        try:
            with connect(pg.conninfo(merge_db), runbook="merge_race", read_only=False) as s:
                plan = plan_merge_organizations(s, FROM, INTO, lock_timeout="20s")
                merged["result"] = apply(plan, confirm=FROM, progress=False)
        except Exception as exc:  # re-raised below, in the test's thread
            merged["error"] = exc

    # calls.org_id has no foreign key in this database (orphaned_rows); billing_records.org_id has one.
    no_fk, with_fk = {}, {}
    writers = [
        threading.Thread(target=_writer, args=(pg.conninfo(merge_db),
            "insert into public.calls (org_id, direction, from_number, to_number, status)"
            " values (%s, 'inbound', '+15550000001', '+15550000002', 'completed') returning id", (from_id,), no_fk)),
        threading.Thread(target=_writer, args=(pg.conninfo(merge_db),
            "insert into public.billing_records (org_id, description, amount) values (%s, 'race', 1) returning id",
            (from_id,), with_fk)),
    ]
    merger = threading.Thread(target=merge)
    try:
        merger.start()
        with pg.connect(merge_db) as mon:
            _wait_for(mon, WAITING, ("pgrunbooks/merge_race",))  # the merge holds its locks, mid-transaction
            for w in writers:
                w.start()
            _wait_for(mon, "select count(*) = 2 from pg_stat_activity where application_name = 'app_writer'"
                           " and wait_event_type = 'Lock'")  # both writers wait on the merge's locks
            hold.rollback()
            merger.join(30)
            for w in writers:
                w.join(30)
            left = {t: mon.execute(f"select count(*) from public.{t} where org_id = %s", (from_id,)).fetchone()[0]
                    for t in ("calls", "billing_records", "org_users", "sms_messages", "webhook_events")}
            raced = mon.execute("select o.slug from public.calls c join public.organizations o on o.id = c.org_id"
                                " where c.id = %s", (no_fk.get("id"),)).fetchone()
    finally:
        hold.close()
    if "error" in merged:
        raise merged["error"]
    result = merged["result"]
    assert result.ok
    assert isinstance(with_fk.get("error"), psycopg.errors.ForeignKeyViolation), "with a foreign key: refused, B is gone"
    assert raced == (INTO,), "without one: the row written while the merge ran was swept to A"
    assert set(left.values()) == {0}, left
    (calls,) = [o for o in result.objects if o["table"] == "public.calls"]
    assert calls["late_rows"] == 1 and any("swept" in w for w in result.warnings)
    assert str(no_fk["id"]) in result.undo, "the swept row is in the undo too"

