"""archive: a table that references the source WITHOUT a foreign key is a dependent like one with it.

The ``orphaned_rows`` fault drops ``recordings_call_id_fkey``; ``missing_foreign_keys`` still infers
``recordings.call_id → calls.id``. Archiving calls must count those recordings, block on them, and with
``on_dependents='skip'`` leave every call a recording points at in place (PostgreSQL 18 and 15).
"""

from __future__ import annotations

from pgrunbooks.actions import PreconditionError, apply, plan_archive
from pgrunbooks.db import connect

import pytest

CALLS = {"source": "public.calls", "archive": "public.call_archives", "older_than": "1 year"}
ORPHANS = (
    "select count(*) from public.recordings r where not exists (select from public.calls c where c.id = r.call_id)"
)


def _fk_is_gone(conn) -> bool:
    return not conn.execute(
        "select exists (select from pg_constraint where conname = 'recordings_call_id_fkey')"
    ).fetchone()[0]


def test_fkless_dependents_block_the_archive_with_their_count(pg, faults_clone, audit_log):
    with pg.connect(faults_clone) as conn:
        assert _fk_is_gone(conn), "the orphaned_rows fault drops the foreign key"
        orphans_before = conn.execute(ORPHANS).fetchone()[0]
        calls_before = conn.execute("select count(*) from public.calls").fetchone()[0]
    with connect(pg.conninfo(faults_clone), runbook="archive_old_data", read_only=False) as s:
        plan = plan_archive(s, pairs=[CALLS])
        cutoff = plan.state["pairs"][0].cutoff
        referencing = s.scalar(
            "select count(*) from public.recordings r where exists"
            " (select from public.calls c where c.id = r.call_id and c.created_at < %s)",
            (cutoff,),
        )
        assert referencing > 100, "the seed has recordings of year-old calls"
        blocker = next(b for b in plan.blockers if "public.recordings" in b)
        assert f"{referencing:,} rows" in blocker and "no foreign key" in blocker and "orphan" in blocker
        assert "call_id" in blocker and "on_dependents='skip'" in blocker
        # dependent_rows adds up every dependent: the FK-less recordings and those with a foreign key
        declared = s.scalar(
            "select count(*) from public.call_event_log d where exists"
            " (select from public.calls c where c.id = d.call_id and c.created_at < %s)",
            (cutoff,),
        ) if s.scalar("select to_regclass('public.call_event_log') is not null") else 0
        assert plan.objects[0]["dependent_rows"] == referencing + declared
        with pytest.raises(PreconditionError, match="blockers"):
            apply(plan, confirm=plan.confirm)
    with pg.connect(faults_clone) as conn:
        assert conn.execute("select count(*) from public.calls").fetchone()[0] == calls_before
        assert conn.execute(ORPHANS).fetchone()[0] == orphans_before


def test_skip_leaves_every_call_a_recording_points_at(pg, faults_clone, audit_log):
    with pg.connect(faults_clone) as conn:
        orphans_before = conn.execute(ORPHANS).fetchone()[0]
    with connect(pg.conninfo(faults_clone), runbook="archive_old_data", read_only=False) as s:
        plan = plan_archive(s, pairs=[CALLS], on_dependents="skip")
        assert not [b for b in plan.blockers if "recordings" in b]
        assert any("public.recordings" in n and "no foreign key" in n for n in plan.notes)
        assert plan.objects[0]["rows_to_move"] < plan.objects[0]["rows_older_than_cutoff"]
        result = apply(plan, confirm=plan.confirm, progress=False)
    assert result.ok and result.objects[0]["moved"] == plan.rows > 0
    with pg.connect(faults_clone) as conn:
        assert conn.execute(ORPHANS).fetchone()[0] == orphans_before, "no recording lost its call"
