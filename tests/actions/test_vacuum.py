"""The vacuum_analyze action on the planted faults (PostgreSQL 18 and 15)."""

from __future__ import annotations

import psycopg
import pytest

from pgrunbooks import audit
from pgrunbooks.actions import ConfirmationError, LockTimeoutError, apply, plan_vacuum_analyze
from pgrunbooks.actions.checksum import database_checksum
from pgrunbooks.db import connect
from pgrunbooks.seed.faults import DEAD_TUPLES_TABLE, NEVER_ANALYZED_TABLE


def session_for(pg, db, runbook):
    return connect(pg.conninfo(db), runbook=runbook, read_only=False)


def test_vacuum_plan_targets_planted_faults_and_changes_nothing(pg, faults_clone, audit_log):
    with pg.connect(faults_clone) as conn:
        before = database_checksum(conn)
    with session_for(pg, faults_clone, "vacuum_analyze") as s:
        plan = plan_vacuum_analyze(s)
    ops = {o["table"]: o["operation"] for o in plan.objects}
    assert ops.get(DEAD_TUPLES_TABLE) == "vacuum (analyze)", plan.objects
    # never analyzed and never vacuumed after its inserts: ANALYZE alone would leave vacuum_age flagging it
    reasons = {o["table"]: o["reasons"] for o in plan.objects}
    assert ops.get(NEVER_ANALYZED_TABLE) == "vacuum (analyze)", plan.objects
    assert "never_analyzed" in reasons[NEVER_ANALYZED_TABLE] and "vacuum_age" in reasons[NEVER_ANALYZED_TABLE]
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


def test_a_check_that_errors_stops_the_plan(pg, faults_clone, monkeypatch):
    """The plan takes its tables from the checks registry; a check ending in an error must not
    leave a quietly incomplete plan (nor a second copy of the thresholds standing in)."""
    from dataclasses import replace

    from pgrunbooks.checks import REGISTRY
    from pgrunbooks.checks.runner import fetch
    from pgrunbooks.errors import CheckFailedError

    def broken(check, ctx, params):  # a real server error (division_by_zero) inside the check's query
        return fetch(ctx, check, "select 1 / 0 as boom", {})

    monkeypatch.setitem(REGISTRY, "dead_tuples", replace(REGISTRY["dead_tuples"], collect=broken))
    with session_for(pg, faults_clone, "vacuum_analyze") as s:
        with pytest.raises(CheckFailedError, match="check dead_tuples failed") as err:
            plan_vacuum_analyze(s)
        assert err.value.hint and err.value.exit_code == 2
        # An explicit list does not depend on the diagnostics.
        assert [o["table"] for o in plan_vacuum_analyze(s, tables=[DEAD_TUPLES_TABLE], from_checks=False).objects] == [DEAD_TUPLES_TABLE]


def test_a_vacuum_the_server_skips_is_an_error_not_a_success(pg, faults_clone, audit_log):
    """The table changes owner between plan and apply: the server answers VACUUM with a warning
    (SQLSTATE 01000) and does nothing; apply must say so, not report the table maintained."""
    from pgrunbooks.errors import SkippedByServerError
    from pgrunbooks.sandbox import ADMIN_USER

    with session_for(pg, faults_clone, "vacuum_analyze") as s:
        plan = plan_vacuum_analyze(s, tables=[DEAD_TUPLES_TABLE], from_checks=False)
        assert not plan.blockers
        with pg.connect(faults_clone) as admin:
            admin.execute(f"alter table {DEAD_TUPLES_TABLE} owner to {ADMIN_USER}")
        with pytest.raises(SkippedByServerError, match="skipped it") as err:
            apply(plan, confirm=faults_clone, progress=False)
    assert DEAD_TUPLES_TABLE in str(err.value)
    failed = audit.read(audit_log)[-1]
    assert failed["outcome"] == "failed" and failed["error"]["type"] == "SkippedByServerError"


def test_a_table_flagged_by_vacuum_age_is_vacuumed_and_no_longer_flagged(pg, clean_clone, audit_log):
    """Analyzed but never vacuumed after 2,000 inserts: ANALYZE alone would leave it flagged next week."""
    from pgrunbooks.checks import run_checks

    table = "public.vacuum_age_probe"
    with pg.connect(clean_clone) as conn:
        conn.execute(f"create table {table} (id int) with (autovacuum_enabled = false)")
        conn.execute(f"alter table {table} owner to postgres")
        conn.execute(f"insert into {table} select generate_series(1, 2000)")
        conn.execute(f"analyze {table}")
    with session_for(pg, clean_clone, "vacuum_analyze") as s:
        flagged = [f.object for f in run_checks(s, ids=["vacuum_age"]) if f.object == table]
        assert flagged, "the probe table is flagged by vacuum_age"
        plan = plan_vacuum_analyze(s)
        row = next(o for o in plan.objects if o["table"] == table)
        assert row["operation"] == "vacuum (analyze)" and "vacuum_age" in row["reasons"], row
        result = apply(plan, confirm=plan.confirm, progress=False)
        assert result.ok, result
        assert not [f for f in run_checks(s, ids=["vacuum_age"]) if f.object == table], "no longer flagged"
