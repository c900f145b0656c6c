"""tenant_data_exposure's probe: a leak, a lock-out and a missing grant told apart, each naming its
cause; a clean database passes; the fix action commits only what the re-probe proves (PostgreSQL 18 and 15)."""

from __future__ import annotations

import uuid

import pytest

from incident_helpers import member_of_two, session
from pgrunbooks import audit
from pgrunbooks.actions.policy_fix import plan_policy_fix
from pgrunbooks.errors import ConfirmationError, UsageError, VerificationError
from pgrunbooks.incidents import exposure
from pgrunbooks.seed.faults.catalogue import LEAKY_POLICY, LOCKOUT_POLICY, LOCKOUT_TABLE, UNGRANTED_TABLE
from pgrunbooks.seed.incidents import leaking_policy, lockout_policy


@pytest.fixture(scope="module")
def faulty_probe(pg, faults_db):
    with session(pg, faults_db) as s:
        return exposure.probe(s, member_of_two(pg, faults_db))


def test_leaking_policy_shows_other_orgs_and_is_named(faulty_probe):
    leak = faulty_probe.table("public.billing_records")
    assert leak.verdict == "leak" and leak.foreign and not set(leak.foreign) & set(faulty_probe.tenants)
    assert leak.responsible == [LEAKY_POLICY]
    assert leak.fix == [f"drop policy {LEAKY_POLICY} on public.billing_records;"]
    assert leak.undo[0].startswith(f"create policy {LEAKY_POLICY} on public.billing_records as permissive for select")
    first = exposure.findings(faulty_probe)[0]
    assert first.severity == "critical" and first.object in ("public.billing_records", "public.webhook_events")
    named = next(f for f in exposure.findings(faulty_probe) if f.object == "public.billing_records")
    assert named.severity == "critical" and LEAKY_POLICY in named.title


def test_lockout_policy_hides_the_members_own_rows_and_is_named(faulty_probe):
    locked = faulty_probe.table(LOCKOUT_TABLE)
    assert locked.verdict == "locked_out" and locked.own_expected > 0 and locked.own_seen == 0
    assert locked.responsible == [LOCKOUT_POLICY]
    finding = next(f for f in exposure.findings(faulty_probe) if f.object == LOCKOUT_TABLE)
    assert finding.check_id == "tenant_data_exposure.locked_out" and LOCKOUT_POLICY in finding.title


def test_missing_grant_is_a_grant_problem_not_rls(faulty_probe):
    denied = faulty_probe.table(UNGRANTED_TABLE)
    assert denied.verdict == "denied" and denied.sqlstate == "42501" and denied.responsible == []
    assert denied.fix == [f"grant select on {UNGRANTED_TABLE} to authenticated;"]
    finding = next(f for f in exposure.findings(faulty_probe) if f.object == UNGRANTED_TABLE)
    assert "grant problem, not row level security" in finding.title


def test_clean_database_passes(pg, clean_db):
    with session(pg, clean_db) as s:
        result = exposure.probe(s, member_of_two(pg, clean_db))
    assert result.ok, result.frame().to_string()
    (only,) = exposure.findings(result)
    assert only.severity == "ok"


def test_unknown_user_or_table_is_usage_error_before_any_probe(pg, clean_db):
    with session(pg, clean_db) as s:
        with pytest.raises(UsageError, match="no user"):
            exposure.probe(s, "nobody@example.invalid")
        with pytest.raises(UsageError, match="not a tenant table"):
            exposure.probe(s, member_of_two(pg, clean_db), table="public.no_such_table")


def _policy(pg, db, table, name):
    schema, rel = table.split(".")
    with pg.connect(db) as conn:
        return conn.execute("select qual, with_check from pg_catalog.pg_policies where schemaname = %s"
                            " and tablename = %s and policyname = %s", (schema, rel, name)).fetchone()


def test_fix_is_applied_only_when_the_reprobe_passes(pg, faults_copy, audit_log):
    user = member_of_two(pg, faults_copy)
    before = _policy(pg, faults_copy, LOCKOUT_TABLE, LOCKOUT_POLICY)
    with session(pg, faults_copy, read_only=False) as s:
        # A "fix" that keeps the lock-out: applied, re-probed inside its transaction, rolled back.
        wrong = plan_policy_fix(s, user, LOCKOUT_TABLE, statements=[
            f"alter policy {LOCKOUT_POLICY} on {LOCKOUT_TABLE} using (org_id = (select auth.uid()))"])
        with pytest.raises(VerificationError, match="rolled back, nothing changed"):
            wrong.apply(confirm=LOCKOUT_TABLE)
        assert _policy(pg, faults_copy, LOCKOUT_TABLE, LOCKOUT_POLICY) == before

        # The proposed fixes: applied, re-probed inside, committed.
        for table in (LOCKOUT_TABLE, "public.billing_records", UNGRANTED_TABLE):
            plan = plan_policy_fix(s, user, table)
            assert plan.confirm == table and plan.statements and plan.undo
            result = plan.apply(confirm=table)
            assert result.ok and result.outcome == "applied", result
        after = exposure.probe(s, user)
    assert all(after.table(t).ok for t in (LOCKOUT_TABLE, "public.billing_records", UNGRANTED_TABLE))
    assert _policy(pg, faults_copy, "public.billing_records", LEAKY_POLICY) is None
    records = audit.read(audit_log)
    assert [r["outcome"] for r in records if r["outcome"] != "started"] == ["failed", "applied", "applied", "applied"]
    lockout = next(r for r in records if r["outcome"] == "applied")
    assert f"alter policy {LOCKOUT_POLICY} on {LOCKOUT_TABLE} using (" in lockout["result"]["undo"]


def test_wrong_confirm_refuses(pg, faults_copy):
    with session(pg, faults_copy, read_only=False) as s:
        plan = plan_policy_fix(s, member_of_two(pg, faults_copy), "public.webhook_events")
        with pytest.raises(ConfirmationError):
            plan.apply(confirm="public.calls")


@pytest.fixture
def clean_copy(pg, clean_template):
    name = pg.create_database(f"y_{uuid.uuid4().hex[:10]}", template=clean_template)
    yield name
    pg.drop_database(name)


def test_runtime_leaking_and_lockout_policies_are_named_first_then_gone(pg, clean_copy):
    """H16C's runtime faults (planted now, removed on exit) on a clean copy: the leak is the first finding."""
    admin, user = pg.admin_conninfo(clean_copy), member_of_two(pg, clean_copy)
    with leaking_policy(admin) as leak, lockout_policy(admin) as lockout, session(pg, clean_copy) as s:
        found = exposure.findings(exposure.probe(s, user))
        assert found[0].check_id == "tenant_data_exposure.leak" and found[0].object == leak.table
        assert leak.policy in found[0].title
        assert any(f.check_id == "tenant_data_exposure.locked_out" and f.object == lockout.table
                   and lockout.policy in f.title for f in found)
    with session(pg, clean_copy) as s:
        assert exposure.probe(s, user).ok
