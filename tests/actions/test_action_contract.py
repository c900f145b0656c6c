"""The Action contract every action keeps: a typed plan that knows its action, typed verifications,
and a result that is ok only when something was verified and all of it held."""

from __future__ import annotations

import dataclasses

import pytest

from pgrunbooks import audit
from pgrunbooks.actions import (
    ACTIONS,
    ARCHIVE,
    VACUUM_ANALYZE,
    Action,
    ActionError,
    ActionResult,
    Plan,
    Verified,
    apply,
    plan_archive,
    plan_reindex,
    plan_terminate,
    plan_vacuum_analyze,
)
from pgrunbooks.db import connect
from pgrunbooks.notebook import act


def test_a_result_with_nothing_verified_is_not_ok():
    assert not ActionResult(action=VACUUM_ANALYZE, outcome="applied", summary="did something").ok
    held = ActionResult(action=VACUUM_ANALYZE, outcome="applied", summary="s", verified=[Verified("a", True, "yes")])
    assert held.ok
    broken = dataclasses.replace(held, verified=[Verified("a", True, "yes"), Verified("b", False, "no")])
    assert not broken.ok


def test_an_applied_result_that_verified_nothing_is_reported_as_a_warning():
    (unverified,) = ActionResult(action=VACUUM_ANALYZE, outcome="applied", summary="s").findings()
    assert unverified.severity == "warning"
    (idle,) = ActionResult(action=VACUUM_ANALYZE, outcome="nothing_to_do", summary="Nothing to do.").findings()
    assert idle.severity == "ok", "nothing to do: nothing to verify, nothing wrong"


def test_verified_is_frozen():
    v = Verified("public.calls: counts conserved", True, "10 = 10")
    with pytest.raises(dataclasses.FrozenInstanceError):
        v.ok = False  # type: ignore[misc]


def test_every_action_declares_its_contract():
    names = [a.name for a in ACTIONS]
    assert sorted(names) == ["add_organization", "archive", "bulk_import_users", "drop_slot", "fix_billing_record",
                             "merge_organizations", "policy_fix", "reindex", "terminate_sessions", "vacuum_analyze"]
    for action in ACTIONS:
        assert isinstance(action, Action)
        assert action.title and action.confirm_hint and action.outline_columns, action


def test_an_action_without_an_apply_step_cannot_exist():
    class Halfway(Action):
        name, title, confirm_hint, outline_columns = "halfway", "Halfway", "nothing", ("x",)

        def plan(self, session):  # no execute
            raise NotImplementedError

    with pytest.raises(TypeError, match="execute"):
        Halfway()


def test_each_plan_knows_its_action_and_outline_columns_name_its_objects(pg, clean_db):
    with connect(pg.conninfo(clean_db), runbook="contract", read_only=False) as s:
        plans = [
            plan_vacuum_analyze(s, tables=["public.calls"], from_checks=False),
            plan_reindex(s, indexes=["public.calls_created_at_idx"], from_checks=False),
            plan_archive(s, on_dependents="skip"),
            plan_terminate(s, pids=[s.backend_pid], min_duration="0"),
        ]
        for plan, action in zip(plans, ACTIONS):
            assert isinstance(plan, Plan) and plan.action is action
            assert str(plan).startswith(f"PLAN  {action.title}  [{action.name}]")
            assert all(f.check_id.startswith(f"action.{action.name}.") for f in plan.findings())
            if plan.objects:
                assert set(action.outline_columns) <= set(plan.objects[0]), (action, plan.objects[0])
                assert act.outline(plan).startswith(f"{action.name}: {len(plan.objects)} object(s)")
        with pytest.raises(ActionError, match="cannot apply a plan of vacuum_analyze"):
            ARCHIVE.apply(plans[0], confirm=clean_db)


def test_the_audit_record_keeps_each_verification_as_name_ok_detail(pg, clean_clone, audit_log):
    with connect(pg.conninfo(clean_clone), runbook="contract", read_only=False) as s:
        plan = plan_vacuum_analyze(s, tables=["public.calls"], from_checks=False)
        result = apply(plan, confirm=clean_clone, progress=False)
    assert result.ok and all(isinstance(v, Verified) for v in result.verified)
    record = audit.read(audit_log)[-1]
    assert record["action"] == "vacuum_analyze" and record["outcome"] == "applied"
    assert record["result"]["verified"] == {v.name: {"ok": v.ok, "detail": v.detail} for v in result.verified}
    assert "public.calls: statistics refreshed" in record["result"]["verified"]


def test_every_check_that_names_its_fix_names_an_action():
    from pgrunbooks.checks import REGISTRY

    fixes = {c.fixed_by for c in REGISTRY.values() if c.fixed_by}
    assert fixes and fixes <= {a.name for a in ACTIONS}, fixes


def test_every_action_plan_is_wrapped_so_a_refusal_while_planning_is_audited():
    for action in ACTIONS:
        assert getattr(type(action).plan, "__wrapped__", None) is not None, action


def test_the_fingerprint_is_stable_and_changes_with_objects_and_parameters(pg, clean_db):
    with connect(pg.conninfo(clean_db), runbook="contract", read_only=False) as s:
        one = plan_reindex(s, indexes=["public.calls_created_at_idx"], from_checks=False)
        again = plan_reindex(s, indexes=["public.calls_created_at_idx"], from_checks=False)
        other = plan_reindex(s, indexes=["public.sms_messages_created_at_idx"], from_checks=False)
        slower = plan_reindex(s, indexes=["public.calls_created_at_idx"], from_checks=False, lock_timeout="6s")
    assert one.fingerprint == again.fingerprint, "same plan, same fingerprint (times and sizes left out)"
    assert len({one.fingerprint, other.fingerprint, slower.fingerprint}) == 3, "other objects, other parameters"
    again.rerun = {"target": "local", "indexes": ["public.calls_created_at_idx"]}
    assert again.fingerprint != one.fingerprint, "the runbook parameters that reproduce it are part of it"


def test_verification_marks_are_words_with_a_colour():
    from pgrunbooks.actions.text import verification_mark

    assert "PASS" in verification_mark(True) and "color:" in verification_mark(True)
    assert "FAIL" in verification_mark(False) and verification_mark(False) != verification_mark(True)
    assert not any(ch in verification_mark(ok) for ok in (True, False) for ch in "✅❌")
