"""bulk_import_users on a seeded clone (PostgreSQL 18 and 15): rows validated in SQL with line numbers, one
transaction, idempotent, undone; malformed files refused with the line; kill -9 mid-transaction lands nothing."""

from __future__ import annotations

import signal

import pytest

from pgrunbooks import audit
from pgrunbooks.actions import apply
from pgrunbooks.actions.data.bulk_import import plan_bulk_import_users
from pgrunbooks.errors import PreconditionError, UsageError

MEMBERSHIPS = "select count(*) from public.org_users"
USERS = "select (select count(*) from auth.users), (select count(*) from public.profiles)"


def _people(q):
    """Two users, three organizations (slug, id), and user 1's own organization (they are its owner)."""
    emails = [r[0] for r in q("select email from public.profiles where id in (md5('user:1')::uuid, md5('user:2')::uuid)"
                              " order by id")]
    orgs = q("select slug, id from public.organizations o where not exists (select from public.org_users ou"
             " where ou.org_id = o.id and ou.user_id in (md5('user:1')::uuid, md5('user:2')::uuid)) order by slug limit 2")
    own = q("select o.slug from public.organizations o join public.org_users ou on ou.org_id = o.id"
            " where ou.user_id = md5('user:1')::uuid order by 1 limit 1")[0][0]
    return emails, orgs, own


def _file(tmp_path, q, name="users.csv"):
    (a, b), ((slug1, id1), (slug2, _)), own = _people(q)
    lines = [
        "email,organization,role",
        f"{a},{slug1},member",            # 2 insert
        f" {b.upper()} ,{id1},admin",     # 3 insert: email case and blanks, organization by id
        f"not-an-email,{slug1},member",   # 4 malformed email
        f"{a},no-such-org,member",        # 5 unknown organization
        f"{b},{slug2},owner",             # 6 role not allowed
        f"{a},{slug1},viewer",            # 7 duplicate of line 2
        f"{a},{own},member",              # 8 already a member (the owner)
        f"new.person@example.com,{slug2},viewer",  # 9 no such user (created with create_missing_users)
    ]
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_imports_the_valid_rows_lists_the_rejects_by_line_and_a_rerun_changes_nothing(session, q, tmp_path, audit_log):
    csv = _file(tmp_path, q)
    members, users = q(MEMBERSHIPS)[0][0], q(USERS)[0]
    plan = plan_bulk_import_users(session(read_only=True), csv=str(csv))  # a dry run from a read-only session
    assert plan.confirm == 2 and q(MEMBERSHIPS)[0][0] == members
    rejects = {r["line"]: r["reason"] for r in plan.state["rejects"]}
    assert rejects == {4: "malformed email", 5: "unknown organization", 6: "role not allowed",
                       7: "duplicate of line 2", 9: "no such user"}
    assert any(w.startswith("rejected, no such user: 1 line(s): 9") for w in plan.warnings), plan.warnings
    assert {o["outcome"] for o in plan.objects} == {"insert", "member", "reject"}

    s = session()
    result = apply(plan_bulk_import_users(s, csv=str(csv)), confirm=2, progress=False)
    assert result.ok and q(MEMBERSHIPS)[0][0] == members + 2 and q(USERS)[0] == users
    again = plan_bulk_import_users(s, csv=str(csv))
    assert again.confirm == 0 and again.nothing_to_do and again.summary.startswith("Nothing to do")
    assert apply(again, confirm=0, progress=False).outcome == "nothing_to_do"
    assert q(MEMBERSHIPS)[0][0] == members + 2

    # The missing user is created as Supabase Auth would (auth.users + profiles), only when asked.
    plan = plan_bulk_import_users(s, csv=str(csv), create_missing_users=True)
    assert plan.confirm == 1 and 9 not in {r["line"] for r in plan.state["rejects"]}
    apply(plan, confirm=1, progress=False)
    assert q("select u.role, p.global_role, ou.role from auth.users u join public.profiles p using (id)"
             " join public.org_users ou on ou.user_id = u.id where u.email = 'new.person@example.com'") == [
        ("authenticated", "user", "viewer")]

    for record in reversed([r for r in audit.read(audit_log) if r["outcome"] == "applied"]):
        q(record["result"]["undo"])
    assert q(MEMBERSHIPS)[0][0] == members and q(USERS)[0] == users, "the undos delete exactly what was inserted"


def test_a_membership_added_after_the_plan_makes_the_apply_refuse_and_change_nothing(session, q, state, tmp_path):
    csv = _file(tmp_path, q)
    plan = plan_bulk_import_users(session(), csv=str(csv))
    (a, _), ((slug1, _), _), _ = _people(q)
    q("insert into public.org_users (org_id, user_id, role) select o.id, p.id, 'viewer' from public.organizations o,"
      " public.profiles p where o.slug = %s and p.email = %s", (slug1, a))
    before = state()
    with pytest.raises(PreconditionError, match="changed since the plan"):
        apply(plan, confirm=2, progress=False)
    assert state() == before
    q("delete from public.org_users ou using public.organizations o, public.profiles p where ou.org_id = o.id"
      " and ou.user_id = p.id and o.slug = %s and p.email = %s", (slug1, a))  # the module's clone is shared


def _expect_usage_error(s, path, *, line: int | None, words: str):
    with pytest.raises(UsageError) as err:
        plan_bulk_import_users(s, csv=str(path))
    text = str(err.value)
    assert err.value.exit_code == 3 and words in text, text
    if line is not None:
        assert f"line {line}" in text, text


def test_malformed_files_are_refused_with_the_line_and_nothing_changes(session, q, state, tmp_path):
    good = "email,organization,role\na@example.com,x,member\n"
    cases = {
        "header.csv": (b"mail,org,role\na@example.com,x,member\n", 1, "the header must be"),
        "latin1.csv": ((good + "b@example.com,caf\xe9,member\n").encode("latin-1"), 3, "not UTF-8"),
        "nul.csv": (good.replace("a@", "a\0@").encode(), 2, "NUL byte"),
        "long.csv": ((good + "x" * (10 * 1024 * 1024) + "\n").encode(), 3, "longer than"),
        "columns.csv": ((good + "c@example.com,x\n").encode(), 3, "not valid CSV"),
        "quote.csv": ((good + 'd@example.com,"x,member\n').encode(), None, "not valid CSV"),
    }
    before = state()
    s = session()
    for name, (data, line, words) in cases.items():
        (tmp_path / name).write_bytes(data)
        _expect_usage_error(s, tmp_path / name, line=line, words=words)
    _expect_usage_error(s, tmp_path / "missing.csv", line=None, words="no such file")
    assert state() == before


KILL_SCRIPT = """
import sys
from pgrunbooks.actions import apply
from pgrunbooks.actions.data.bulk_import import plan_bulk_import_users
from pgrunbooks.db import connect
s = connect(sys.argv[1], runbook="bulk_kill", read_only=False)
plan = plan_bulk_import_users(s, csv=sys.argv[2], create_missing_users=True, lock_timeout="60s")
print("planned", plan.confirm, flush=True)
apply(plan, confirm=plan.confirm, progress=False)
print("done", flush=True)
"""


def test_kill_9_in_the_middle_of_the_transaction_lands_nothing_and_a_rerun_works(session, q, state, tmp_path,
                                                                                  kill_when_waiting):
    (a, b), ((slug1, _), (slug2, _)), _ = _people(q)
    rows = [f"{a},{slug1},member", f"{b},{slug2},admin"] + [f"new{i}@example.com,{slug1},viewer" for i in range(200)]
    csv = tmp_path / "kill.csv"
    csv.write_text("email,organization,role\n" + "\n".join(rows) + "\n")
    before = state()
    # org_users held in SHARE mode: the import gets as far as inserting its users, then waits on the lock.
    returncode = kill_when_waiting(KILL_SCRIPT, str(csv), lock="lock table public.org_users in share mode",
                                   app="bulk_kill")
    assert returncode == -signal.SIGKILL
    assert state() == before, "no user, profile or membership of the killed transaction landed"

    plan = plan_bulk_import_users(session(), csv=str(csv), create_missing_users=True)
    assert plan.confirm == 202
    result = apply(plan, confirm=202, progress=False)
    assert result.ok
    assert q("select count(*) from public.org_users ou join public.profiles p on p.id = ou.user_id"
             " where p.email like 'new%%@example.com'")[0][0] == 200
    q(result.undo)  # the module's clone is shared
    assert state() == before

