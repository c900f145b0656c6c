"""vacuum_analyze and reindex actions on the planted faults (PostgreSQL 18 and 15)."""

from __future__ import annotations

import psycopg
import pytest

from pgrunbooks import audit
from pgrunbooks.actions import ConfirmationError, LockTimeoutError, apply, plan_reindex, plan_vacuum_analyze
from pgrunbooks.actions.checksum import database_checksum
from pgrunbooks.db import connect
from pgrunbooks.errors import UsageError
from pgrunbooks.seed.faults import DEAD_TUPLES_TABLE, INVALID_INDEX, NEVER_ANALYZED_TABLE


@pytest.fixture(autouse=True)
def audit_log(tmp_path, monkeypatch):
    path = tmp_path / "audit.jsonl"
    monkeypatch.setenv("PGRUNBOOKS_AUDIT_LOG", str(path))
    return path


def session_for(pg, db, runbook):
    return connect(pg.conninfo(db), runbook=runbook, read_only=False)


def index_row(pg, db, name):
    with pg.connect(db) as conn:
        return conn.execute(
            "select i.indexrelid::int8, i.indisvalid from pg_index i where i.indexrelid = to_regclass(%s)", (name,)
        ).fetchone()


def test_vacuum_plan_targets_planted_faults_and_changes_nothing(pg, faults_clone, audit_log):
    with pg.connect(faults_clone) as conn:
        before = database_checksum(conn)
    with session_for(pg, faults_clone, "vacuum_analyze") as s:
        plan = plan_vacuum_analyze(s)
    ops = {o["table"]: o["operation"] for o in plan.objects}
    assert ops.get(DEAD_TUPLES_TABLE) == "vacuum (analyze)", plan.objects
    assert ops.get(NEVER_ANALYZED_TABLE) == "analyze", plan.objects
    assert plan.confirm == faults_clone and not plan.blockers
    assert all(st.startswith(("vacuum (analyze)", "analyze")) for st in plan.statements)
    assert "session-mode" in str(plan)
    with pg.connect(faults_clone) as conn:
        assert database_checksum(conn) == before
    assert not audit_log.exists()


def test_vacuum_analyze_reclaims_dead_tuples_and_refreshes_statistics(pg, faults_clone, audit_log):
    with session_for(pg, faults_clone, "vacuum_analyze") as s:
        plan = plan_vacuum_analyze(s, tables=[DEAD_TUPLES_TABLE], analyze_only=[NEVER_ANALYZED_TABLE], from_checks=False)
        with pytest.raises(ConfirmationError):
            apply(plan, confirm="victorysync")
        result = apply(plan, confirm=faults_clone, progress=False)
    assert result.ok and result.outcome == "applied"
    rows = {o["table"]: o for o in result.objects}
    dead = rows[DEAD_TUPLES_TABLE]
    assert dead["dead_tuples_before"] > 1000 and dead["dead_tuples_after"] < dead["dead_tuples_before"] / 10
    assert rows[NEVER_ANALYZED_TABLE]["last_analyze"] is not None
    assert "reclaimed_mb" in dead and "MB" in result.summary
    records = audit.read(audit_log)
    assert [r["outcome"] for r in records] == ["refused", "started", "applied"]


def test_vacuum_waits_no_longer_than_lock_timeout(pg, faults_clone, audit_log):
    with session_for(pg, faults_clone, "vacuum_analyze") as s:
        plan = plan_vacuum_analyze(s, tables=[DEAD_TUPLES_TABLE], from_checks=False, lock_timeout="300ms")
        with psycopg.connect(pg.conninfo(faults_clone)) as other:
            other.execute(f"lock table {DEAD_TUPLES_TABLE} in share update exclusive mode")  # as another VACUUM would
            with pytest.raises(LockTimeoutError, match="lock_timeout=300ms"):
                apply(plan, confirm=faults_clone, progress=False)
            other.rollback()
        # The dedicated connection's session-level timeouts never leaked into the runbook's session.
        assert s.scalar("show lock_timeout") != "300ms"
    assert audit.read(audit_log)[-1]["outcome"] == "failed"


def test_reindex_plan_never_rebuilds_everything_and_knows_the_invalid_unique_index(pg, faults_clone):
    with session_for(pg, faults_clone, "reindex") as s:
        plan = plan_reindex(s)
        assert not any("database" in st or "reindex table" in st for st in plan.statements)
        assert all(st.startswith(("reindex index concurrently", "drop index concurrently")) for st in plan.statements)
        # recordings_url_key failed because of duplicate urls: a rebuild would fail again.
        assert any(INVALID_INDEX in w and "duplicate" in w for w in plan.warnings), plan.warnings
        assert INVALID_INDEX not in " ".join(plan.statements)
        drop = plan_reindex(s, drop_invalid=[f"public.{INVALID_INDEX}"], from_checks=False)
        assert [o["operation"] for o in drop.objects] == ["drop invalid"]
        assert "create unique index" in drop.undo.lower()
        result = apply(drop, confirm=faults_clone, progress=False)
    assert result.ok and index_row(pg, faults_clone, f"public.{INVALID_INDEX}") is None


def test_reindex_concurrently_rebuilds_in_place(pg, clean_clone):
    name = "public.calls_created_at_idx"
    oid_before, valid = index_row(pg, clean_clone, name)
    assert valid
    with session_for(pg, clean_clone, "reindex") as s:
        plan = plan_reindex(s, indexes=[name], from_checks=False)
        assert plan.statements == ['reindex index concurrently "public"."calls_created_at_idx";']
        result = apply(plan, confirm=clean_clone, progress=False)
    assert result.ok
    oid_after, valid = index_row(pg, clean_clone, name)
    assert valid and oid_after != oid_before, "a new index was built and swapped in under the same name"


def test_failed_rebuild_leftover_is_reported_then_dropped_by_the_next_plan(pg, clean_clone, audit_log):
    name = "public.calls_created_at_idx"
    with session_for(pg, clean_clone, "reindex") as s:
        plan = plan_reindex(s, indexes=[name], from_checks=False, lock_timeout="500ms")
        with psycopg.connect(pg.conninfo(clean_clone)) as writer:
            writer.execute("lock table public.calls in row exclusive mode")  # an open write transaction
            with pytest.raises(LockTimeoutError) as err:
                apply(plan, confirm=clean_clone, progress=False)
            writer.rollback()
        assert "calls_created_at_idx_ccnew" in str(err.value)
        failed = audit.read(audit_log)[-1]
        assert failed["outcome"] == "failed"
        # The progress poller saw, from its own connection, where the rebuild was waiting.
        assert any("waiting" in p for p in failed["progress"]["last_phases"]["phases"]), failed["progress"]
        assert index_row(pg, clean_clone, name)[1], "the original index is untouched and valid"

        again = plan_reindex(s, from_checks=True)
        ops = {o["index"]: o["operation"] for o in again.objects}
        assert ops.get("public.calls_created_at_idx_ccnew") == "drop leftover", again.objects
        result = apply(again, confirm=clean_clone, progress=False)
        assert result.ok
    assert index_row(pg, clean_clone, "public.calls_created_at_idx_ccnew") is None


@pytest.mark.parametrize("bad", ["public.calls_created_at_idx; drop table public.calls", "public.calls", "nope.nothing"])
def test_reindex_rejects_what_is_not_an_index(pg, clean_db, bad):
    with connect(pg.conninfo(clean_db), runbook="reindex") as s:
        with pytest.raises(UsageError):
            plan_reindex(s, indexes=[bad], from_checks=False)
