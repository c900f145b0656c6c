"""The reindex action: REINDEX INDEX CONCURRENTLY, leftovers, refusals (PostgreSQL 18 and 15)."""

from __future__ import annotations

import psycopg
import pytest

from pgrunbooks import audit
from pgrunbooks.actions import LockTimeoutError, apply, plan_reindex
from pgrunbooks.db import connect
from pgrunbooks.errors import UsageError
from pgrunbooks.seed.faults import INVALID_INDEX


def session_for(pg, db, runbook):
    return connect(pg.conninfo(db), runbook=runbook, read_only=False)


def index_row(pg, db, name):
    with pg.connect(db) as conn:
        return conn.execute(
            "select i.indexrelid::int8, i.indisvalid from pg_index i where i.indexrelid = to_regclass(%s)", (name,)
        ).fetchone()


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


def test_failure_after_the_swap_says_the_new_index_is_in_place_and_names_the_ccold_leftover(pg, clean_clone, audit_log):
    """A reader's lock only conflicts with the step after the swap: the rebuild itself succeeded."""
    name = "public.calls_created_at_idx"
    oid_before, _ = index_row(pg, clean_clone, name)
    with session_for(pg, clean_clone, "reindex") as s:
        plan = plan_reindex(s, indexes=[name], from_checks=False, lock_timeout="500ms")
        with psycopg.connect(pg.conninfo(clean_clone)) as reader:
            reader.execute("lock table public.calls in access share mode")  # an open read transaction
            with pytest.raises(LockTimeoutError) as err:
                apply(plan, confirm=clean_clone, progress=False)
            reader.rollback()
    message = str(err.value)
    assert "after the swap" in message and "in place as public.calls_created_at_idx" in message, message
    assert "calls_created_at_idx_ccold" in message, message
    oid_after, valid = index_row(pg, clean_clone, name)
    assert valid and oid_after != oid_before, "the rebuilt index carries the name"
    leftovers = audit.read(audit_log)[-1]["progress"]["leftovers"]
    assert leftovers["swapped"] and (leftovers["dropped"] or leftovers["remaining"])
    if leftovers["remaining"]:
        assert "drop index concurrently public.calls_created_at_idx_ccold" in message
        with session_for(pg, clean_clone, "reindex") as s:  # as the message says: the next plan drops it
            again = plan_reindex(s, from_checks=True)
            ops = {o["index"]: o["operation"] for o in again.objects}
            assert ops.get("public.calls_created_at_idx_ccold") == "drop leftover", again.objects
            assert ops.get(name) is None, "the rebuilt index is not rebuilt again"
            assert apply(again, confirm=clean_clone, progress=False).ok
    assert index_row(pg, clean_clone, "public.calls_created_at_idx_ccold") is None
    assert index_row(pg, clean_clone, name)[1]
