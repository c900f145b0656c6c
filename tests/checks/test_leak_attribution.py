"""Which policy leaks, proven rather than guessed, on real PostgreSQL (18 and 15).

A leaking policy is rarely ``using (true)``: ``org_id is not null`` reads as a tenant filter and
admits every organization. tenant_isolation evaluates each permissive SELECT policy's own expression
on the foreign rows a member saw (as that member), names the ones that admit them, and prints SQL
that closes the leak: a select-only policy is dropped while another still serves the members, a
``for all`` one is narrowed to the member's organizations. multiple_permissive_policies, critical
for the same pair, prints SQL that takes the leaking policy out of the pair. Each printed fix is
applied on a clone: the finding is gone and members still see their own rows. A policy without a
USING expression admits nothing (the server adds no clause for it): never named as the leak, and
merged away like any other.
"""

from __future__ import annotations

import pytest
from clihelpers import sql_statements

from pgrunbooks import checks
from pgrunbooks.db import connect
from pgrunbooks.findings import Severity

FLAGGED = {Severity.WARNING, Severity.CRITICAL}
IDS = ["tenant_isolation", "multiple_permissive_policies"]
#: reads like a tenant filter, admits every organization's invoices
WIDE = ("create policy invoices_with_an_org on public.invoices for select to authenticated"
        " using (org_id is not null)")


def _run(pg, db: str) -> dict:
    with connect(pg.conninfo(db), runbook="test/leaks") as session:
        return {r.check.id: {f.object: f for f in r.findings} for r in checks.run_results(session, ids=IDS)}


def _plant(pg, db: str, *statements: str) -> None:
    with pg.connect(db, user="postgres") as conn:
        for statement in statements:
            conn.execute(statement)


def _apply(pg, db: str, remediation: str) -> None:
    with pg.connect(db, user="postgres") as conn, conn.transaction():
        for statement in sql_statements(remediation):
            conn.execute(statement)


def _flagged(found: dict) -> dict:
    return {check: sorted(o for o, f in by_object.items() if f.severity in FLAGGED) for check, by_object in found.items()}


def _isolated_and_served(found: dict) -> None:
    """No leak, no member locked out: the isolation check is green."""
    isolation = found["tenant_isolation"]
    assert [f.severity for f in isolation.values()] == [Severity.OK], _flagged(found)
    assert "saw their own" in next(iter(isolation.values())).detail


def test_a_policy_that_is_not_simply_true_is_proven_to_be_the_leak(pg, clean_clone):
    _plant(pg, clean_clone, WIDE)
    found = _run(pg, clean_clone)
    leak = found["tenant_isolation"]["public.invoices"]
    assert leak.severity is Severity.CRITICAL and "(policy invoices_with_an_org)" in leak.title
    assert leak.data["authenticated_leaking_policies"] == ["invoices_with_an_org"]
    assert leak.data["leaks"][0]["policies"] == ["invoices_with_an_org"]
    assert "invoices_with_an_org, which admits them" in leak.detail
    # another policy (the tenant one) still serves the members: the select-only culprit is dropped
    assert sql_statements(leak.remediation) == ["drop policy invoices_with_an_org on public.invoices"]
    pair = found["multiple_permissive_policies"]["public.invoices:authenticated:select"]
    assert pair.severity is Severity.CRITICAL and pair.data["leaking_policies"] == ["invoices_with_an_org"]
    _apply(pg, clean_clone, leak.remediation)
    after = _run(pg, clean_clone)
    assert _flagged(after) == {"tenant_isolation": [], "multiple_permissive_policies": []}
    _isolated_and_served(after)


def test_the_permissive_pair_fix_closes_the_same_leak(pg, clean_clone):
    _plant(pg, clean_clone, WIDE)
    pair = _run(pg, clean_clone)["multiple_permissive_policies"]["public.invoices:authenticated:select"]
    assert sql_statements(pair.remediation)[0] == "drop policy invoices_with_an_org on public.invoices"
    _apply(pg, clean_clone, pair.remediation)
    after = _run(pg, clean_clone)
    assert _flagged(after) == {"tenant_isolation": [], "multiple_permissive_policies": []}
    _isolated_and_served(after)


def test_a_leaking_for_all_policy_is_narrowed_and_keeps_serving_writes(pg, clean_clone):
    """The only policy of its table: dropped, members would lose their rows and their writes."""
    with pg.connect(clean_clone, user="postgres") as conn:
        names = [r[0] for r in conn.execute("select polname from pg_policy where polrelid = 'public.sms_messages'::regclass")]
        for name in names:
            conn.execute(f'drop policy "{name}" on public.sms_messages')
        conn.execute("create policy sms_any_org on public.sms_messages for all to authenticated"
                     " using (org_id is not null) with check (org_id is not null)")
    found = _run(pg, clean_clone)
    leak = found["tenant_isolation"]["public.sms_messages"]
    assert leak.severity is Severity.CRITICAL and leak.data["authenticated_leaking_policies"] == ["sms_any_org"]
    statements = sql_statements(leak.remediation)
    assert statements[0].startswith("alter policy sms_any_org on public.sms_messages using (")
    assert " with check (" in statements[0]
    _apply(pg, clean_clone, leak.remediation)
    _isolated_and_served(_run(pg, clean_clone))
    with pg.connect(clean_clone) as conn:
        cmd, using, check = conn.execute(
            "select polcmd, pg_get_expr(polqual, polrelid), pg_get_expr(polwithcheck, polrelid) from pg_policy"
            " where polname = 'sms_any_org'").fetchone()
    assert cmd == "*" and "auth.uid()" in using and "auth.uid()" in check


def test_a_policy_without_using_admits_nothing_and_is_merged_away(pg, clean_clone):
    _plant(pg, clean_clone, "create policy invoices_placeholder on public.invoices for select to authenticated")
    found = _run(pg, clean_clone)
    _isolated_and_served(found)  # not a leak, not named as one
    pair = found["multiple_permissive_policies"]["public.invoices:authenticated:select"]
    assert pair.severity is Severity.WARNING
    statements = sql_statements(pair.remediation)
    assert statements[0].startswith("create policy invoices_select_authenticated on public.invoices")
    assert "invoices_placeholder" not in statements[0]  # it contributed no rows to the OR
    _apply(pg, clean_clone, pair.remediation)
    after = _run(pg, clean_clone)
    assert _flagged(after) == {"tenant_isolation": [], "multiple_permissive_policies": []}
    _isolated_and_served(after)


@pytest.mark.parametrize("command, clause", [("insert", ""), ("update", "with check (true)")])
def test_a_write_pair_missing_an_expression_merges_into_executable_sql(pg, clean_clone, command, clause):
    """An insert policy with no check at all, an update policy with no using: each admits nothing on
    that side, so the merge ORs the others' expressions, and the printed SQL removes the pair."""
    _plant(pg, clean_clone, f"create policy invoices_{command}_x on public.invoices for {command} to authenticated {clause}")
    pair = _run(pg, clean_clone)["multiple_permissive_policies"][f"public.invoices:authenticated:{command}"]
    assert pair.severity is Severity.WARNING
    assert sql_statements(pair.remediation)[0].startswith(f"create policy invoices_{command}_authenticated")
    _apply(pg, clean_clone, pair.remediation)
    after = _run(pg, clean_clone)
    assert _flagged(after) == {"tenant_isolation": [], "multiple_permissive_policies": []}


def test_a_leaking_for_all_policy_in_a_pair_gets_the_same_fix_from_both_checks(pg, clean_clone):
    """Next to the tenant policy, a ``for all`` policy that admits every organization: both findings print
    tenant_isolation's fix (narrow it, for every command), and after it the pair is only a performance
    warning, not a leak."""
    _plant(pg, clean_clone, "create policy calls_any_org on public.calls for all to authenticated"
                            " using (org_id is not null) with check (true)")
    found = _run(pg, clean_clone)
    leak = found["tenant_isolation"]["public.calls"]
    pair = found["multiple_permissive_policies"]["public.calls:authenticated:select"]
    assert leak.severity is Severity.CRITICAL and pair.severity is Severity.CRITICAL
    assert sql_statements(pair.remediation) == sql_statements(leak.remediation)
    assert sql_statements(pair.remediation)[0].startswith("alter policy calls_any_org on public.calls using (")
    _apply(pg, clean_clone, pair.remediation)
    after = _run(pg, clean_clone)
    _isolated_and_served(after)
    assert after["multiple_permissive_policies"]["public.calls:authenticated:select"].severity is Severity.WARNING
