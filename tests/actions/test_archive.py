"""archive_old_data: atomic batched moves, concurrency, crash safety, refusals (PostgreSQL 18 and 15)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid

import psycopg
import pytest

from pgrunbooks import audit
from pgrunbooks.actions import (
    ConfirmationError,
    LockTimeoutError,
    PreconditionError,
    apply,
    plan_archive,
)
from pgrunbooks.actions.checksum import database_checksum, rows_checksum
from pgrunbooks.db import connect
from pgrunbooks.errors import UsageError

CALLS = {"source": "public.calls", "archive": "public.call_archives", "older_than": "1 year"}
CALL_COLUMNS = ["id", "org_id", "phone_number_id", "direction", "from_number", "to_number", "status", "duration",
                "created_at", "ended_at"]
CALLS_UNION = ("public.calls", "public.call_archives")


def session_for(pg, db, runbook="archive_old_data"):
    return connect(pg.conninfo(db), runbook=runbook, read_only=False)


def test_dry_run_changes_nothing(pg, clean_clone, audit_log):
    with pg.connect(clean_clone) as conn:
        before = database_checksum(conn, ("public", "auth"))
    with session_for(pg, clean_clone) as s:
        plan = plan_archive(s)
        plan_archive(s, on_dependents="skip", batch_size=10)
        text = str(plan)
    with pg.connect(clean_clone) as conn:
        assert database_checksum(conn, ("public", "auth")) == before
    assert not audit_log.exists(), "a dry run writes no audit record"
    assert "delete from" in text and "insert into" in text and "To apply" in text


def test_cascading_foreign_key_is_shown_and_blocks(pg, big_clone):
    with session_for(pg, big_clone) as s:
        plan = plan_archive(s, pairs=[CALLS])
        assert plan.blockers, "recordings reference old calls with ON DELETE CASCADE"
        assert "public.recordings" in plan.blockers[0] and "CASCADE" in plan.blockers[0]
        assert "DELETE" in plan.blockers[0] and "on_dependents='skip'" in plan.blockers[0]
        recordings = s.scalar("select count(*) from public.recordings")
        with pytest.raises(PreconditionError, match="blockers"):
            apply(plan, confirm=plan.confirm)
        assert s.scalar("select count(*) from public.recordings") == recordings
        assert s.scalar("select count(*) from public.call_archives") == 0


def test_skip_dependents_moves_only_unreferenced_calls(pg, big_clone, audit_log):
    with pg.connect(big_clone) as conn:
        before = rows_checksum(conn, CALLS_UNION, CALL_COLUMNS)
        recordings = conn.execute("select count(*), md5(string_agg(r::text, ',' order by r.id)) from public.recordings r").fetchone()
    with session_for(pg, big_clone) as s:
        plan = plan_archive(s, pairs=[CALLS], on_dependents="skip", batch_size=20_000)
        assert not plan.blockers and plan.rows > 10_000
        result = apply(plan, confirm=plan.confirm, progress=False, operator="alice")
    assert result.outcome == "applied" and result.ok, result
    assert result.objects[0]["moved"] == plan.rows
    with pg.connect(big_clone) as conn:
        assert rows_checksum(conn, CALLS_UNION, CALL_COLUMNS) == before
        assert conn.execute(
            "select count(*), md5(string_agg(r::text, ',' order by r.id)) from public.recordings r"
        ).fetchone() == recordings, "no recording was cascade-deleted"
        assert conn.execute(
            "select count(*) from public.recordings r where not exists (select from public.calls c where c.id = r.call_id)"
        ).fetchone()[0] == 0
    records = audit.read(audit_log)
    assert [r["outcome"] for r in records] == ["started", "applied"]
    assert records[-1]["operator"] == "alice" and records[-1]["result"]["verified"]


def test_archiving_dependents_first_unblocks(pg, big_clone):
    with pg.connect(big_clone) as conn:
        conn.execute(
            "create table public.recording_archives (like public.recordings, archived_at timestamptz not null,"
            " primary key (id))"
        )
        conn.execute("alter table public.recording_archives owner to postgres")
        before_calls = rows_checksum(conn, CALLS_UNION, CALL_COLUMNS)
        # One cutoff for the test and both pairs: with now() each time, a seeded row can turn a
        # year old between the count and the archive.
        cutoff = conn.execute("select now() - interval '1 year'").fetchone()[0]
        # Recordings of year-old calls that were made recently would keep their call: count them.
        young = conn.execute(
            "select count(*) from public.recordings r join public.calls c on c.id = r.call_id"
            " where c.created_at < %(cutoff)s and r.created_at >= %(cutoff)s",
            {"cutoff": cutoff},
        ).fetchone()[0]
    pairs = [
        {"source": "public.recordings", "archive": "public.recording_archives", "cutoff": cutoff},
        {"source": CALLS["source"], "archive": CALLS["archive"], "cutoff": cutoff},
    ]
    with session_for(pg, big_clone) as s:
        plan = plan_archive(s, pairs=pairs, on_dependents="stop" if young == 0 else "skip")
        assert not plan.blockers, plan.blockers
        result = apply(plan, confirm=plan.confirm, progress=False)
    assert result.ok
    with pg.connect(big_clone) as conn:
        assert rows_checksum(conn, CALLS_UNION, CALL_COLUMNS) == before_calls
        assert conn.execute(
            "select count(*) from public.calls where created_at < %s", (cutoff,)
        ).fetchone()[0] == young


def test_wrong_confirm_refuses_and_is_audited(pg, clean_clone, audit_log):
    with pg.connect(clean_clone) as conn:
        before = database_checksum(conn)
    with session_for(pg, clean_clone) as s:
        plan = plan_archive(s, on_dependents="skip")
        for wrong in (None, plan.rows + 1, "yes", s.scalar("select current_database()")):
            with pytest.raises(ConfirmationError, match=f"confirm={plan.rows}"):
                apply(plan, confirm=wrong)
    with pg.connect(clean_clone) as conn:
        assert database_checksum(conn) == before
    records = audit.read(audit_log)
    assert len(records) == 4 and {r["outcome"] for r in records} == {"refused"}
    assert records[0]["error"]["type"] == "ConfirmationError"


def test_columns_that_differ_refuse(pg, clean_clone):
    with pg.connect(clean_clone) as conn:
        conn.execute("alter table public.sms_archives alter column segments type integer")
    with session_for(pg, clean_clone) as s:
        plan = plan_archive(s, pairs=[{"source": "public.sms_messages", "archive": "public.sms_archives", "older_than": "6 months"}])
        assert any("segments smallint" in b and "differ" in b for b in plan.blockers), plan.blockers
        with pytest.raises(PreconditionError):
            apply(plan, confirm=plan.confirm)
    with pg.connect(clean_clone) as conn:
        conn.execute("alter table public.sms_archives alter column segments type smallint")
        conn.execute("alter table public.sms_archives drop column archived_at")
        conn.execute("alter table public.sms_archives add column archived_at timestamptz")
        conn.execute("alter table public.sms_archives add column note text")
    with session_for(pg, clean_clone) as s:
        plan = plan_archive(s, pairs=[{"source": "public.sms_messages", "archive": "public.sms_archives", "older_than": "6 months"}])
        assert any("only in archive: note text" in b for b in plan.blockers), plan.blockers


@pytest.mark.parametrize(
    "bad",
    [
        {"source": "public.calls; drop table public.organizations", "archive": "public.call_archives", "older_than": "1 year"},
        {"source": 'public.calls" ; drop table public.organizations; --', "archive": "public.call_archives", "older_than": "1 year"},
        {"source": "public.calls", "archive": "public.call_archives", "older_than": "1 year'; drop table public.organizations; --"},
        {"source": "public.calls", "archive": "public.call_archives", "older_than": "1 year", "column": "created_at < now() or true"},
        {"source": "public.no_such_table", "archive": "public.call_archives", "older_than": "1 year"},
        {"source": "public.calls", "archive": "public.calls", "older_than": "1 year"},
        {"source": "public.calls", "archive": "public.call_archives", "older_than": "-1 year"},
    ],
)
def test_malicious_or_wrong_parameters_are_rejected(pg, clean_clone, bad):
    with session_for(pg, clean_clone) as s:
        with pytest.raises(UsageError):
            plan_archive(s, pairs=[bad])
        assert s.scalar("select to_regclass('public.organizations') is not null")


def test_lock_held_elsewhere_fails_by_lock_timeout_changing_nothing(pg, clean_clone, audit_log):
    with pg.connect(clean_clone) as conn:
        before = database_checksum(conn)
    with session_for(pg, clean_clone) as s:
        plan = plan_archive(s, on_dependents="skip", lock_timeout="200ms")
        with psycopg.connect(pg.conninfo(clean_clone)) as other:
            other.execute("lock table public.call_archives in share mode")  # blocks inserts, not reads
            started = time.monotonic()
            with pytest.raises(LockTimeoutError) as err:
                apply(plan, confirm=plan.confirm, progress=False)
            assert time.monotonic() - started < 10
            other.rollback()
    message = str(err.value)
    assert "lock_timeout=200ms" in message and "Nothing was changed" in message and "hint:" in message
    with pg.connect(clean_clone) as conn:
        assert database_checksum(conn) == before
    last = audit.read(audit_log)[-1]
    assert last["outcome"] == "failed" and last["error"]["type"] == "LockTimeoutError"


def test_changed_world_between_plan_and_apply_refuses(pg, clean_clone):
    with session_for(pg, clean_clone) as s:
        plan = plan_archive(s, pairs=[{"source": "public.sms_messages", "archive": "public.sms_archives", "older_than": "6 months"}])
        s.conn.execute("delete from public.sms_messages where id in (select id from public.sms_messages where created_at < now() - interval '6 months' limit 500)")
        s.conn.commit()
        with pytest.raises(PreconditionError, match="re-plan|make a new plan|plan counted"):
            apply(plan, confirm=plan.confirm, progress=False)
        assert s.scalar("select count(*) from public.sms_archives") == 0


def test_max_runtime_stops_cleanly_and_a_rerun_continues(pg, clean_clone):
    sms = {"source": "public.sms_messages", "archive": "public.sms_archives", "older_than": "6 months"}
    with pg.connect(clean_clone) as conn:
        before = rows_checksum(conn, ("public.sms_messages", "public.sms_archives"), ["id", "body", "created_at"])
    with session_for(pg, clean_clone) as s:
        plan = plan_archive(s, pairs=[sms], batch_size=100, pause=0.05, max_runtime=0.3, vacuum=False)
        first = apply(plan, confirm=plan.confirm, progress=False)
        assert first.outcome == "partial" and first.ok
        assert 0 < first.objects[0]["moved"] < plan.rows
        again = plan_archive(s, pairs=[sms], batch_size=1000)
        assert again.rows == plan.rows - first.objects[0]["moved"]
        second = apply(again, confirm=again.rows, progress=False)
        assert second.outcome == "applied" and second.ok
        assert s.scalar("select count(*) from public.sms_messages where created_at < %s", (plan.state["pairs"][0].cutoff,)) == 0
    with pg.connect(clean_clone) as conn:
        assert rows_checksum(conn, ("public.sms_messages", "public.sms_archives"), ["id", "body", "created_at"]) == before


def test_rows_written_during_the_run_are_neither_lost_nor_archived_wrongly(pg, clean_clone):
    with pg.connect(clean_clone) as conn:
        org = conn.execute("select id from public.organizations order by id limit 1").fetchone()[0]
        before = rows_checksum(conn, CALLS_UNION, CALL_COLUMNS)
        # A row another transaction holds for the whole run must be skipped, not waited on.
        held = conn.execute(
            "select id from public.calls c where created_at < now() - interval '13 months'"
            " and not exists (select from public.recordings r where r.call_id = c.id) order by id desc limit 1"
        ).fetchone()[0]
    inserted: list[tuple[uuid.UUID, str]] = []
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer():
        try:
            with psycopg.connect(pg.conninfo(clean_clone), autocommit=True) as w:
                i = 0
                while not stop.is_set():
                    i += 1
                    kind = ("old-high", "old-low", "new")[i % 3]
                    raw = uuid.uuid4().hex
                    # old-high sorts after every existing key (the run may still reach it),
                    # old-low before them (the keyset has passed: it stays for the next run).
                    key = uuid.UUID({"old-high": "ffff", "old-low": "0000"}.get(kind, raw[:4]) + raw[4:])
                    created = "now() - interval '400 days'" if kind.startswith("old") else "now()"
                    w.execute(
                        "insert into public.calls (id, org_id, direction, from_number, to_number, status, duration, created_at)"
                        f" values (%s, %s, 'inbound', '+15550000000', '+15550000001', 'completed', 7, {created})",
                        (key, org),
                    )
                    inserted.append((key, kind))
                    time.sleep(0.002)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    with psycopg.connect(pg.conninfo(clean_clone)) as holder:
        holder.execute("select 1 from public.calls where id = %s for update", (held,))
        with session_for(pg, clean_clone) as s:
            plan = plan_archive(s, pairs=[CALLS], on_dependents="skip", batch_size=100, pause=0.01)
            t = threading.Thread(target=writer)
            t.start()
            try:
                time.sleep(0.1)
                result = apply(plan, confirm=plan.confirm, progress=False)
            finally:
                stop.set()
                t.join()
            cutoff = plan.state["pairs"][0].cutoff
        holder.rollback()
    assert not errors, errors
    assert result.ok and len(inserted) > 50
    # batches delete without locking first until they meet the held row; from then on they skip locked rows
    assert result.objects[0]["skip_locked_from_batch"] is not None, result.objects
    with pg.connect(clean_clone) as conn:
        ids = [k for k, _ in inserted]
        where = conn.execute(
            "select u.id, u.src, count(*) over (partition by u.id) from ("
            " select id, 'calls' as src from public.calls where id = any(%s)"
            " union all select id, 'archive' from public.call_archives where id = any(%s)) u",
            (ids, ids),
        ).fetchall()
        located = {row[0]: row[1] for row in where}
        assert len(where) == len(ids) and all(row[2] == 1 for row in where), "every inserted row exists exactly once"
        for key, kind in inserted:
            if kind == "new":
                assert located[key] == "calls", "a current row was archived"
        assert conn.execute("select count(*) from public.call_archives where created_at >= %s", (cutoff,)).fetchone()[0] == 0
        assert conn.execute("select count(*) from public.calls where id = %s", (held,)).fetchone()[0] == 1
        # The original rows: same content, once each, across both tables.
        n, distinct, digest = rows_checksum(conn, CALLS_UNION, CALL_COLUMNS)
        assert n == distinct == before[0] + len(inserted)
        conn.execute("create temp table inserted_ids (id uuid primary key)")
        with conn.cursor().copy("copy inserted_ids from stdin") as cp:
            for key in ids:
                cp.write_row((key,))
        original = conn.execute(
            "select count(*), md5(coalesce(string_agg(u::text, E'\\n' order by u.id, u::text), '')) from ("
            " select id, org_id, phone_number_id, direction, from_number, to_number, status, duration, created_at, ended_at from public.calls"
            " union all select id, org_id, phone_number_id, direction, from_number, to_number, status, duration, created_at, ended_at from public.call_archives) u"
            " where not exists (select from inserted_ids i where i.id = u.id)"
        ).fetchone()
        assert (original[0], original[1]) == (before[0], before[2])


CRASH_SCRIPT = """
import sys
from pgrunbooks.actions import apply, plan_archive
from pgrunbooks.db import connect
s = connect(sys.argv[1], runbook="archive_crash", read_only=False)
plan = plan_archive(s, pairs=[{"source": "public.calls", "archive": "public.call_archives", "older_than": "1 year"}],
                    on_dependents="skip", batch_size=int(sys.argv[2]), pause=float(sys.argv[3]), vacuum=False)
print("planned", plan.rows, flush=True)
apply(plan, confirm=plan.confirm, progress=False)
print("done", flush=True)
"""


@pytest.mark.slow
def test_sigkill_mid_run_then_rerun_loses_and_duplicates_nothing(pg, big_clone, tmp_path):
    with pg.connect(big_clone) as conn:
        before = rows_checksum(conn, CALLS_UNION, CALL_COLUMNS)
        assert before[0] >= 200_000
    env = dict(os.environ, PGRUNBOOKS_AUDIT_LOG=str(tmp_path / "crash-audit.jsonl"))
    proc = subprocess.Popen(
        [sys.executable, "-c", CRASH_SCRIPT, pg.conninfo(big_clone), "1000", "0.005"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        deadline = time.monotonic() + 60
        with pg.connect(big_clone) as mon:
            while time.monotonic() < deadline:
                archived = mon.execute("select count(*) from public.call_archives").fetchone()[0]
                if archived >= 15_000:
                    break
                assert proc.poll() is None, proc.communicate()
                time.sleep(0.01)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
            # The server notices the dead client and rolls its open batch back; wait until it has.
            while mon.execute("select count(*) from pg_stat_activity where application_name = 'pgrunbooks/archive_crash'").fetchone()[0]:
                assert time.monotonic() < deadline
                time.sleep(0.05)
            after_kill = rows_checksum(mon, CALLS_UNION, CALL_COLUMNS)
            archived = mon.execute("select count(*) from public.call_archives").fetchone()[0]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert 15_000 <= archived
    assert after_kill == before, "after SIGKILL: every row once, same content"
    records = audit.read(tmp_path / "crash-audit.jsonl")
    assert records and records[-1]["outcome"] == "started", "the killed run left its 'started' record"

    with session_for(pg, big_clone) as s:
        plan = plan_archive(s, pairs=[CALLS], on_dependents="skip", batch_size=5000)
        assert plan.rows > 0
        result = apply(plan, confirm=plan.confirm, progress=False)
    assert result.ok and result.outcome == "applied"
    with pg.connect(big_clone) as conn:
        assert rows_checksum(conn, CALLS_UNION, CALL_COLUMNS) == before
        left = conn.execute(
            "select count(*) from public.calls c where created_at < %s"
            " and not exists (select from public.recordings r where r.call_id = c.id)",
            (plan.state["pairs"][0].cutoff,),
        ).fetchone()[0]
        assert left == 0
        assert conn.execute("select count(*) from public.call_archives").fetchone()[0] == archived + result.objects[0]["moved"]


def test_a_cascade_the_guard_missed_rolls_the_batch_back(pg, big_clone, monkeypatch):
    """Fault injection: without the not-exists guard every batch reaches recordings; the
    cascade tripwire (this transaction's counters of the dependent table) must roll each back."""
    from psycopg import sql

    from pgrunbooks.actions import VerificationError
    from pgrunbooks.actions.archive import statements

    with pg.connect(big_clone) as conn:
        before = rows_checksum(conn, CALLS_UNION, CALL_COLUMNS)
        recordings = conn.execute("select count(*), md5(string_agg(r::text, ',' order by r.id)) from public.recordings r").fetchone()
    with session_for(pg, big_clone) as s:
        plan = plan_archive(s, pairs=[CALLS], on_dependents="skip", batch_size=20_000, vacuum=False)
        monkeypatch.setattr(statements, "dependent_guard", lambda fks, alias="s": sql.Composed([]))
        with pytest.raises(VerificationError, match="dependent rows"):
            apply(plan, confirm=plan.confirm, progress=False)
    with pg.connect(big_clone) as conn:
        assert conn.execute(
            "select count(*), md5(string_agg(r::text, ',' order by r.id)) from public.recordings r"
        ).fetchone() == recordings, "no recording was cascade-deleted"
        assert rows_checksum(conn, CALLS_UNION, CALL_COLUMNS) == before


def test_a_trigger_that_alters_archived_rows_rolls_the_batch_back(pg, clean_clone, audit_log):
    # A trigger on the archive is the one way an INSERT … SELECT of identical columns can store
    # something else: the plan says so, each batch then compares content hashes, and refuses.
    with pg.connect(clean_clone) as conn:
        conn.execute(
            "create function public.bump_duration() returns trigger language plpgsql as "
            "$$ begin new.duration := new.duration + 1; return new; end $$"
        )
        conn.execute(
            "create trigger bump before insert on public.call_archives for each row execute function public.bump_duration()"
        )
        before = rows_checksum(conn, CALLS_UNION, CALL_COLUMNS)
    from pgrunbooks.actions import VerificationError

    with session_for(pg, clean_clone) as s:
        plan = plan_archive(s, pairs=[CALLS], on_dependents="skip")
        assert any("bump" in w for w in plan.warnings), plan.warnings
        with pytest.raises(VerificationError, match="content hashes"):
            apply(plan, confirm=plan.confirm, progress=False)
    with pg.connect(clean_clone) as conn:
        assert rows_checksum(conn, CALLS_UNION, CALL_COLUMNS) == before
        assert conn.execute("select count(*) from public.call_archives").fetchone()[0] == 0
    assert audit.read(audit_log)[-1]["outcome"] == "failed"
