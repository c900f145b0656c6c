"""merge_organizations on the seeded data (PostgreSQL 18 and 15): collisions, verification, undo, refusals.

The planted-faults clone is the hard case: five of the org_id columns have lost their foreign key
(the ``orphaned_rows`` fault), so the merge must find them by inference; blue-hvac-2 and
harbor-catering-4 share three members (``org_users (org_id, user_id)`` collisions).
"""

from __future__ import annotations


import pytest

from pgrunbooks import audit
from pgrunbooks.actions import apply
from pgrunbooks.actions.checksum import database_checksum
from pgrunbooks.actions.data.merge_organizations import plan_merge_organizations
from pgrunbooks.db import connect
from pgrunbooks.errors import ConfirmationError, PreconditionError, UsageError

FROM, INTO = "blue-hvac-2", "harbor-catering-4"
ROLE_RANK = {"owner": 4, "admin": 3, "member": 2, "viewer": 1}
SHARED_MEMBERS = (
    "select b.user_id::text, b.role as from_role, a.role as into_role from public.org_users b"
    " join public.org_users a on a.user_id = b.user_id"
    " where b.org_id = (select id from public.organizations where slug = %s)"
    "   and a.org_id = (select id from public.organizations where slug = %s) order by 1"
)


def _state(pg, db: str) -> dict:
    with pg.connect(db) as conn:
        return database_checksum(conn, ("public",))


def _org_id(conn, slug: str):
    row = conn.execute("select id from public.organizations where slug = %s", (slug,)).fetchone()
    return row[0] if row else None


def test_merge_with_collisions_verifies_and_its_undo_restores_the_exact_state(pg, merge_db, audit_log):
    before = _state(pg, merge_db)
    with pg.connect(merge_db) as conn:
        shared = conn.execute(SHARED_MEMBERS, (FROM, INTO)).fetchall()
        from_id = _org_id(conn, FROM)
    assert len(shared) >= 2, "the seed gives the two organizations common members"
    with connect(pg.conninfo(merge_db), runbook="data/merge_organizations", read_only=False) as s:
        plan = plan_merge_organizations(s, FROM, INTO)
        assert plan.ready, plan.blockers
        moves = {o["table"]: o for o in plan.objects if o["operation"] == "move"}
        # Found by foreign key and, where orphaned_rows dropped it, by inference: never a hand list.
        assert moves["public.billing_records"]["detail"].startswith("foreign key")
        assert moves["public.calls"]["detail"] == "no foreign key (inferred)"
        assert {"public.org_users", "public.sms_messages", "public.recordings", "public.webhook_events"} <= set(moves)
        (collision,) = [o for o in plan.objects if o["operation"].startswith("collisions")]
        assert collision["detail"] == "org_users_org_id_user_id_key" and collision["rows_to_move"] == len(shared)
        hanging = {o["table"] for o in plan.objects if o["operation"] == "follows its parent"}
        assert "public.call_event_log" in hanging, "rows under moved calls are named in the plan"
        assert plan.confirm == FROM
        with pytest.raises(ConfirmationError):
            apply(plan, confirm=INTO, progress=False)
        result = apply(plan, confirm=FROM, progress=False)
    assert result.ok and result.outcome == "applied"
    assert sum(o["moved"] for o in result.objects) == plan.rows - len(shared) + sum(
        1 for _, f, i in shared if ROLE_RANK[f] > ROLE_RANK[i]), "B's losers are dropped, its winners move"
    with pg.connect(merge_db) as conn:
        assert _org_id(conn, FROM) is None
        for table, o in moves.items():
            left = conn.execute(f"select count(*) from {table} where org_id = %s", (from_id,)).fetchone()[0]
            assert left == 0, table
        roles = dict(conn.execute(
            "select u.user_id::text, u.role from public.org_users u join public.organizations o on o.id = u.org_id"
            " where o.slug = %s and u.user_id::text = any(%s)", (INTO, [u for u, _, _ in shared])).fetchall())
    for user, from_role, into_role in shared:
        assert roles[user] == max(from_role, into_role, key=ROLE_RANK.get), "keep_higher_role"
    record = audit.read(audit_log)[-1]
    assert record["outcome"] == "applied" and record["result"]["undo"] == result.undo
    assert "…" in str(result) and len(str(result)) < len(result.undo), "shown with the moved keys elided"
    with pg.connect(merge_db) as conn:
        conn.execute(result.undo)
    assert _state(pg, merge_db) == before, "the undo splits B back out exactly"


def test_tombstone_keeps_the_organization_renamed_and_canceled(first_pg, merge_db, audit_log):
    """Version-independent (plain UPDATEs): first server only."""
    pg, db = first_pg, merge_db
    before = _state(pg, db)
    with connect(pg.conninfo(db), runbook="data/merge_organizations", read_only=False) as s:
        plan = plan_merge_organizations(s, "summit-legal-3", "acme-motors-1", tombstone=True,
                                        on_collision={"org_users": "keep_into"})
        result = apply(plan, confirm="summit-legal-3", progress=False)
    assert result.ok
    with pg.connect(db) as conn:
        name, status = conn.execute("select name, subscription_status from public.organizations"
                                    " where slug = 'summit-legal-3'").fetchone()
        assert name.endswith("(merged into acme-motors-1)") and status == "canceled"
        conn.execute(result.undo)
    assert _state(pg, db) == before
    # A reference the merge cannot rewrite (not to the id) blocks, rather than being left pointing at B.
    with pg.connect(db) as conn:
        conn.execute("create table public.org_aliases (alias text primary key,"
                     " org_slug text references public.organizations (slug))")
    with connect(pg.conninfo(db), runbook="data/merge_organizations") as s:
        (blocker,) = plan_merge_organizations(s, "summit-legal-3", "acme-motors-1").blockers
    assert blocker.startswith("public.org_aliases (org_slug) references public.organizations (slug)")


def test_bad_input_is_refused_before_anything_changes(pg, faults_db, audit_log):
    with connect(pg.conninfo(faults_db), runbook="data/merge_organizations") as s:  # read-only: nothing can change
        for args, kwargs in (
            ((FROM, FROM), {}),  # A = B
            ((FROM, "no-such-org"), {}),
            (("00000000-0000-0000-0000-000000000000", INTO), {}),
            ((FROM, None), {}),
            ((FROM, INTO), {"on_collision": {"org_users": "keep_both"}}),
            ((FROM, INTO), {"on_collision": ["org_users"]}),
            ((FROM, INTO), {"lock_timeout": "5 sekonds"}),
        ):
            with pytest.raises(UsageError) as refused:
                plan_merge_organizations(s, *args, **kwargs)
            assert refused.value.exit_code == 3
        # An unhandled collision refuses the plan, naming the constraint and the colliding keys.
        plan = plan_merge_organizations(s, FROM, INTO, on_collision={"org_users_org_id_user_id_key": "fail"})
        (blocker,) = plan.blockers
        assert "org_users_org_id_user_id_key" in blocker and "(user_id)=(" in blocker
        with pytest.raises(PreconditionError):
            apply(plan, confirm=FROM, progress=False)
        by_table = plan_merge_organizations(s, FROM, INTO, on_collision={"org_users": "fail"})
        assert by_table.blockers == plan.blockers, "a rule for the table replaces the default"
    assert [r["outcome"] for r in audit.read(audit_log)] == ["refused"]


def test_the_runbook_applies_the_command_its_dry_run_prints(first_pg, merge_db, tmp_path):
    """The real CLI, papermill and a kernel, once (first server only: the engine path is version-independent).

    The command is the one the dry run prints (``act.apply_command`` of the same plan, made here in
    process to save a kernel start); the CLI's applying run re-plans and must match its fingerprint.
    """
    import shlex

    from clihelpers import action_cli
    from pgrunbooks.notebook import act

    pg, log = first_pg, tmp_path / "audit.jsonl"
    target = f"local:{merge_db}"
    with connect(pg.conninfo(merge_db), runbook="data/merge_organizations") as s:
        plan = plan_merge_organizations(s, FROM, INTO)
        plan.rerun = dict(target=target, from_org=FROM, into_org=INTO, on_collision={}, tombstone=False,
                          statement_timeout="60s", lock_timeout="5s")
        command = shlex.split(act.apply_command(plan))
    assert command[:3] == ["pgrunbooks", "run", "data/merge_organizations"] and f"confirm={FROM}" in command
    proc = action_cli(pg, command[1:], tmp_path, log)
    assert proc.returncode == 0, shlex.join(command) + "\n" + proc.stdout + proc.stderr
    records = audit.read(log)
    assert [r["outcome"] for r in records] == ["started", "applied"]
    assert records[-1]["fingerprint_given"] == plan.fingerprint == records[-1]["plan"]["fingerprint"]
    with pg.connect(merge_db) as conn:
        assert _org_id(conn, FROM) is None
