"""archive: SIGINT stops the run at once, honestly; committed batches are durable (PostgreSQL 18 and 15)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from pgrunbooks import audit
from pgrunbooks.actions.checksum import rows_checksum

CALL_COLUMNS = ["id", "org_id", "phone_number_id", "direction", "from_number", "to_number", "status", "duration",
                "created_at", "ended_at"]
CALLS_UNION = ("public.calls", "public.call_archives")

# What a notebook cell does: plan, then apply with the progress bar on (tqdm), until interrupted.
RUN_SCRIPT = """
import sys
from pgrunbooks.actions import apply, plan_archive
from pgrunbooks.db import connect
s = connect(sys.argv[1], runbook="archive_sigint", read_only=False)
plan = plan_archive(s, pairs=[{"source": "public.calls", "archive": "public.call_archives", "older_than": "1 year"}],
                    on_dependents="skip", batch_size=1000, vacuum=False)
print("planned", plan.rows, flush=True)
apply(plan, confirm=plan.confirm, progress=True)
print("done", flush=True)
"""


def _archived(conn) -> int:
    return conn.execute("select count(*) from public.call_archives").fetchone()[0]


@pytest.mark.slow
def test_sigint_stops_the_archive_at_once_and_the_audit_says_interrupted(pg, big_clone, tmp_path):
    db = big_clone
    with pg.connect(db) as conn:
        before = rows_checksum(conn, CALLS_UNION, CALL_COLUMNS)
        # The sandbox runs with synchronous_commit off; the batches must still commit durably.
        conn.execute(f"alter database {db} set synchronous_commit = off")
    log = tmp_path / "sigint-audit.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-c", RUN_SCRIPT, pg.conninfo(db)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ, PGRUNBOOKS_AUDIT_LOG=str(log)),
    )
    try:
        deadline = time.monotonic() + 60
        with pg.connect(db) as mon:
            while _archived(mon) < 5_000:
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline
                time.sleep(0.01)
            sync = mon.execute(
                "select setting from pg_settings where name = 'synchronous_commit'"
            ).fetchone()[0]
            assert sync == "off", "the database default is off for this test"
            os.kill(proc.pid, signal.SIGINT)
            out, err = proc.communicate(timeout=20)
            archived = _archived(mon)
            time.sleep(1.0)
            assert _archived(mon) == archived, "no batch committed after the process ended"
            assert mon.execute(
                "select count(*) from pg_stat_activity where application_name like '%%archive_sigint%%'"
            ).fetchone()[0] == 0
            after = rows_checksum(mon, CALLS_UNION, CALL_COLUMNS)
            remaining = mon.execute("select count(*) from public.calls where created_at < now() - interval '1 year'"
                                    " and not exists (select from public.recordings r where r.call_id = calls.id)").fetchone()[0]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "done" not in out, "the apply did not run to the end after the interrupt"
    assert "KeyboardInterrupt" in err and proc.returncode != 0
    assert remaining > 10_000, "the run stopped, it did not move every row"
    assert after == before, "every row once, same content"
    records = audit.read(log)
    assert [r["outcome"] for r in records] == ["started", "interrupted"], (records[-1].get("error"), records[-1].get("progress"))
    committed = records[-1]["progress"]["committed"]
    assert f"{archived:,} rows of public.calls archived" in committed, committed


def test_batches_commit_durably_where_the_server_runs_with_synchronous_commit_off(pg, clean_clone, audit_log):
    """A statement trigger on the archive sees each batch's own setting: on, though the database says off."""
    from pgrunbooks.actions import apply, plan_archive
    from pgrunbooks.db import connect

    with pg.connect(clean_clone) as conn:
        conn.execute(f"alter database {clean_clone} set synchronous_commit = off")
        conn.execute("create table public.batch_settings (setting text)")
        conn.execute(
            "create function public.log_sync() returns trigger language plpgsql as $$ begin"
            " insert into public.batch_settings values (current_setting('synchronous_commit')); return null; end $$"
        )
        conn.execute("alter table public.batch_settings owner to postgres")
        conn.execute("create trigger log_sync after insert on public.call_archives for each statement"
                     " execute function public.log_sync()")
    with connect(pg.conninfo(clean_clone), runbook="archive_old_data", read_only=False) as s:
        assert s.scalar("select current_setting('synchronous_commit')") == "off"
        plan = plan_archive(s, pairs=[{"source": "public.calls", "archive": "public.call_archives",
                                       "older_than": "1 year"}], on_dependents="skip", batch_size=500, vacuum=False)
        result = apply(plan, confirm=plan.confirm, progress=False)
    assert result.ok and result.objects[0]["batches"] > 1
    with pg.connect(clean_clone) as conn:
        settings = [r[0] for r in conn.execute("select setting from public.batch_settings").fetchall()]
    assert len(settings) >= result.objects[0]["batches"] and set(settings) == {"on"}
