"""add_organization on a seeded clone (PostgreSQL 18 and 15): created with its owner, idempotent by slug, bad input refused."""

from __future__ import annotations

import pytest

from pgrunbooks import audit
from pgrunbooks.actions import apply
from pgrunbooks.actions.data.add_organization import plan_add_organization
from pgrunbooks.errors import PreconditionError, UsageError

ADMIN = "md5('user:7')::uuid"


def _admin_email(q) -> str:
    return q(f"select email from public.profiles where id = {ADMIN}")[0][0]


def test_adds_the_organization_with_its_admin_as_owner_and_a_rerun_does_nothing(session, q, audit_log):
    email = _admin_email(q)
    orgs = q("select count(*) from public.organizations")[0][0]
    s = session()
    plan = plan_add_organization(s, name="Acme Dental", slug="acme-dental", admin=email.upper(),
                                 subscription_status="active")
    assert plan.ready and plan.confirm == "acme-dental" and [o["table"] for o in plan.objects] == [
        "public.organizations", "public.org_users"]
    result = apply(plan, confirm="acme-dental", progress=False)
    assert result.ok and result.outcome == "applied"
    (org_id, status, created_by), = q("select id, subscription_status, created_by from public.organizations"
                                      " where slug = 'acme-dental'")
    assert str(org_id) in result.summary, "the new id is printed"
    assert status == "active" and q(f"select {ADMIN}")[0][0] == created_by
    assert q("select role from public.org_users where org_id = %s", (org_id,)) == [("owner",)]

    again = plan_add_organization(s, name="Acme Dental", slug="acme-dental", admin=email, subscription_status="active")
    assert again.nothing_to_do and not again.blockers and "already exists" in again.summary
    assert apply(again, confirm="acme-dental", progress=False).outcome == "nothing_to_do"
    assert q("select count(*) from public.organizations")[0][0] == orgs + 1, "no second organization"

    records = audit.read(audit_log)
    assert [r["outcome"] for r in records] == ["started", "applied", "started", "nothing_to_do"]
    undo = records[1]["result"]["undo"]
    assert str(org_id) in undo
    q(undo)
    assert q("select count(*) from public.organizations")[0][0] == orgs, "the undo removes it"


def test_bad_values_and_a_taken_slug_refuse_before_any_change(session, q, state):
    email = _admin_email(q)
    taken = q("select slug, name from public.organizations order by slug limit 1")[0]
    before = state()
    s = session()
    bad = [
        dict(name="X", slug="Not A Slug", admin=email),
        dict(name="X", slug="x-", admin=email),
        dict(name="X", slug="x-y", admin=email, subscription_status="free"),
        dict(name=" ", slug="x-y", admin=email),
        dict(name="X", slug="x-y", admin="nobody@example.com"),
    ]
    for kwargs in bad:
        with pytest.raises(UsageError) as err:
            plan_add_organization(s, **kwargs)
        assert err.value.exit_code == 3
    plan = plan_add_organization(s, name="Someone Else", slug=taken[0], admin=email)
    assert plan.blockers and "taken by another organization" in plan.blockers[0]
    with pytest.raises(PreconditionError):
        apply(plan, confirm=taken[0], progress=False)
    assert state() == before


def test_a_concurrent_creator_wins_and_the_apply_changes_nothing(session, q, state):
    email = _admin_email(q)
    plan = plan_add_organization(session(), name="Race", slug="race-co", admin=email)
    q("insert into public.organizations (name, slug) values ('Race', 'race-co')")
    before = state()
    with pytest.raises(PreconditionError, match="created by someone else"):
        apply(plan, confirm="race-co", progress=False)
    assert state() == before
    q("delete from public.organizations where slug = 'race-co'")  # the module's clone is shared


def test_the_runbook_refuses_a_bad_slug_before_connecting(pg, data_db, state, tmp_path):
    """The notebook declares the slug pattern and the statuses: the CLI exits 3 and nothing connects."""
    from clihelpers import action_cli

    before = state()
    proc = action_cli(pg, ["run", "data/add_organization", "--target", f"local:{data_db}", "-p", "slug=Not A Slug",
                           "-p", "subscription_status=free"], tmp_path, tmp_path / "audit.jsonl")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "does not match the pattern" in proc.stdout + proc.stderr
    assert "must be one of 'trialing', 'active', 'past_due', 'canceled'" in proc.stdout + proc.stderr
    assert state() == before


def test_the_three_data_actions_keep_the_action_contract():
    from pgrunbooks.actions import Action
    from pgrunbooks.actions.data import ADD_ORGANIZATION, BULK_IMPORT_USERS, FIX_BILLING_RECORD

    for action in (ADD_ORGANIZATION, BULK_IMPORT_USERS, FIX_BILLING_RECORD):
        assert isinstance(action, Action) and action.title and action.confirm_hint and action.outline_columns
        assert getattr(type(action).plan, "__wrapped__", None) is not None, "a refusal while planning is audited"


def test_organizations_resolve_by_slug_or_id_and_profiles_by_email_or_id(session, q):
    from pgrunbooks.actions.data.common import resolve_organization, resolve_profile

    (org_id, slug), = q("select id, slug from public.organizations order by slug limit 1")
    (user_id, email), = q("select id, email from public.profiles order by id limit 1")
    s = session(read_only=True)
    assert resolve_organization(s, slug).id == org_id and resolve_organization(s, str(org_id)).slug == slug
    assert resolve_profile(s, email.upper()).id == user_id and resolve_profile(s, user_id).email == email
    for value in ("no-such-org", "00000000-0000-0000-0000-000000000000", "", None):
        with pytest.raises(UsageError):
            resolve_organization(s, value)
