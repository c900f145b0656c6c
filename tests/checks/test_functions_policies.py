"""Functions and permissive policies on real PostgreSQL (18 and 15): function_search_path (splinter 0011),
definer_api_execute (0028/0029, graded by what the function returns) and multiple_permissive_policies
(0006, critical only when tenant_isolation's live probe proves the union leaks). True positives are the
planted faults, true negatives the clean seed (test_checks.py) and the cases below."""

from __future__ import annotations

import json

import pytest
from clihelpers import sql_statements
from psycopg import sql

from pgrunbooks import checks
from pgrunbooks.db import connect
from pgrunbooks.findings import Severity
from pgrunbooks.seed.faults import catalogue

FLAGGED = {Severity.WARNING, Severity.CRITICAL}
IDS = ["function_search_path", "definer_api_execute", "multiple_permissive_policies"]


def _run(pg, db: str, **kwargs) -> dict:
    with connect(pg.conninfo(db), runbook="test/functions") as session:
        return {r.check.id: {f.object: f for f in r.findings}
                for r in checks.run_results(session, ids=IDS, **kwargs)}


@pytest.fixture(scope="module")
def faults_found(pg, faults_db):
    return _run(pg, faults_db)


def test_invoker_function_without_search_path_is_a_warning(faults_found):
    found = faults_found["function_search_path"]
    f = found[catalogue.MUTABLE_FUNCTION_NAME]
    assert f.severity is Severity.WARNING and "mutable search_path" in f.title
    assert "anon" in f.value and "authenticated" in f.value  # PUBLIC may execute it
    # SECURITY DEFINER functions are security_definer_search_path's, pinned ones are fine
    assert catalogue.DEFINER_FUNCTION not in found and "public.user_org_ids()" not in found


def test_definer_returning_tenant_rows_is_critical(faults_found):
    found = faults_found["definer_api_execute"]
    rows = found[catalogue.DEFINER_ROWS_FUNCTION]
    assert rows.severity is Severity.CRITICAL and rows.value == "authenticated"
    assert "public.billing_records" in rows.detail and rows.data["returns_rls_table"]
    scalar = found[catalogue.DEFINER_FUNCTION]  # returns boolean, executable through PUBLIC
    assert scalar.severity is Severity.WARNING and scalar.value == "anon, authenticated"
    helper = found["public.user_org_ids()"]  # what the tenant policies call
    assert helper.severity is Severity.INFO and "org_users_member_select" in helper.detail


def test_the_critical_definer_function_really_leaks(pg, faults_db):
    """What the finding claims, done as /rpc does it: a member reads an organization they are not in."""
    with pg.connect(faults_db) as admin:
        user, foreign = admin.execute(
            "select u.user_id, o.id from public.org_users u cross join public.organizations o"
            " where not exists (select 1 from public.org_users x where x.user_id = u.user_id and x.org_id = o.id)"
            "   and exists (select 1 from public.billing_records b where b.org_id = o.id) limit 1").fetchone()
    with pg.connect(faults_db, user="postgres", autocommit=False) as conn:
        conn.execute("set local role authenticated")
        conn.execute("select set_config('request.jwt.claims', %s, true)",
                     (json.dumps({"sub": str(user), "role": "authenticated"}),))
        direct = conn.execute("select count(*) from public.billing_records where org_id = %s", (foreign,)).fetchone()[0]
        call = sql.SQL("select count(*) from {}(%s)").format(sql.Identifier(*catalogue.DEFINER_ROWS))
        through = conn.execute(call, (foreign,)).fetchone()[0]
        conn.rollback()
    assert through > 0
    assert through > direct or direct > 0  # direct reads leak only through the leaky_policy fault


def test_leaking_permissive_pair_is_critical_and_names_the_open_policy(faults_found):
    found = faults_found["multiple_permissive_policies"]
    f = found["public.billing_records:authenticated:select"]
    assert f.severity is Severity.CRITICAL
    assert f.data["policies"] == ["billing_records_read_all", "billing_records_tenant_isolation"]
    assert f.remediation.startswith(f"drop policy {catalogue.LEAKY_POLICY} on public.billing_records;")
    # anon's policy on phone_numbers is for another role than the tenant policy: not a pair
    assert not [o for o in found if o.startswith("public.phone_numbers:")]


def test_a_non_leaking_pair_is_only_a_performance_warning(pg, clean_clone):
    with pg.connect(clean_clone, user="postgres") as conn:
        conn.execute(
            "create policy invoices_admin_read on public.invoices for select to authenticated using (org_id in"
            " (select ou.org_id from public.org_users ou where ou.user_id = (select auth.uid())"
            " and ou.role in ('owner', 'admin')))")
    found = _run(pg, clean_clone)["multiple_permissive_policies"]
    assert {o for o, f in found.items() if f.severity in FLAGGED} == {"public.invoices:authenticated:select"}
    f = found["public.invoices:authenticated:select"]
    assert f.severity is Severity.WARNING and "saw no leak" in f.detail


def test_exposed_schemas_decide_which_functions_are_audited(pg, clean_clone):
    with pg.connect(clean_clone) as conn:
        conn.execute("create schema api authorization postgres")
        conn.execute("set role postgres")
        conn.execute("create function api.ping() returns text language sql as $$ select 'pong' $$")
        conn.execute("create function api.org_count() returns bigint language sql security definer"
                     " set search_path = '' as $$ select count(*) from public.organizations $$")
    default = _run(pg, clean_clone)
    assert not [o for check in default.values() for o in check if o.startswith("api.")]
    assert not [f for check in default.values() for f in check.values() if f.severity in FLAGGED]
    exposed = _run(pg, clean_clone, exposed_schemas=["public", "api"])
    assert exposed["function_search_path"]["api.ping()"].severity is Severity.WARNING
    assert exposed["definer_api_execute"]["api.org_count()"].severity is Severity.WARNING  # PUBLIC may call it


def test_a_pair_for_one_role_and_action_is_merged_by_its_remediation(pg, clean_clone):
    """Two select policies for authenticated on organizations: the printed statements replace them by
    one OR-ing both, the finding is gone and members still see exactly their organizations."""
    with pg.connect(clean_clone, user="postgres") as conn:
        conn.execute(
            "create policy organizations_admin_select on public.organizations for select to authenticated using (id in"
            " (select ou.org_id from public.org_users ou where ou.user_id = (select auth.uid())"
            " and ou.role in ('owner', 'admin')))")
    found = _run(pg, clean_clone)["multiple_permissive_policies"]
    f = found["public.organizations:authenticated:select"]
    assert f.severity is Severity.WARNING and f.data["mergeable"]
    statements = sql_statements(f.remediation)
    assert statements[0].startswith("create policy organizations_select_authenticated on public.organizations")
    with pg.connect(clean_clone, user="postgres") as conn:
        for statement in statements:
            conn.execute(statement)
    after = _run(pg, clean_clone)["multiple_permissive_policies"]
    assert not [f for f in after.values() if f.severity in FLAGGED]
    with connect(pg.conninfo(clean_clone), runbook="test/functions") as session:
        isolation = checks.run_checks(session, ids=["tenant_isolation"])
    assert [x.severity for x in isolation] == [Severity.OK] and "saw their own" in isolation[0].detail


def test_a_pair_sharing_a_for_all_policy_is_split_and_merged_by_its_remediation(pg, clean_clone):
    """calls_tenant_isolation is ``for all``: the printed SQL merges the select pair, recreates the tenant
    policy's insert, update and delete parts, and nothing else about the table's access changes."""
    with pg.connect(clean_clone, user="postgres") as conn:
        conn.execute("create policy calls_read on public.calls for select to authenticated using (false)")
        before = conn.execute(
            "select polcmd, pg_get_expr(polqual, polrelid), pg_get_expr(polwithcheck, polrelid) from pg_policy"
            " where polrelid = 'public.calls'::regclass and polname = 'calls_tenant_isolation'").fetchone()
    f = _run(pg, clean_clone)["multiple_permissive_policies"]["public.calls:authenticated:select"]
    assert before[0] == "*" and not f.data["mergeable"]
    statements = sql_statements(f.remediation)
    assert statements and statements[-1] == "drop policy calls_tenant_isolation on public.calls"
    with pg.connect(clean_clone, user="postgres") as conn:
        with conn.transaction():
            for statement in statements:
                conn.execute(statement)
        after = dict(conn.execute(
            "select polcmd, array[pg_get_expr(polqual, polrelid), pg_get_expr(polwithcheck, polrelid)]"
            " from pg_policy where polrelid = 'public.calls'::regclass and polname like 'calls_tenant_isolation_%'"
        ).fetchall())
    tenant_using = before[1]
    assert after == {"a": [None, before[2] or tenant_using], "w": [tenant_using, before[2] or tenant_using],
                     "d": [tenant_using, None]}
    found = _run(pg, clean_clone)["multiple_permissive_policies"]
    assert not [o for o, x in found.items() if x.severity in FLAGGED]
    with connect(pg.conninfo(clean_clone), runbook="test/functions") as session:
        isolation = checks.run_checks(session, ids=["tenant_isolation"])
    assert [x.severity for x in isolation] == [Severity.OK] and "saw their own" in isolation[0].detail
