"""tenant_isolation both ways, on real PostgreSQL (18 and 15): a member must see their own
organization's rows. The guide's "fix" (org_id compared with auth.uid()) and a revoked SELECT
grant are planted faults; the finding names the table, the policy and the member it was proven
with, and the 42501 is matched by SQLSTATE. The clean seed is the true negative."""

from __future__ import annotations

import json
import subprocess
import sys

import psycopg
import pytest

from pgrunbooks import checks
from pgrunbooks.db import connect
from pgrunbooks.findings import Severity
from pgrunbooks.seed import FAULTS
from pgrunbooks.seed.faults import catalogue

LOCKED = f"{catalogue.LOCKOUT_TABLE}:own_rows"
UNGRANTED = f"{catalogue.UNGRANTED_TABLE}:own_rows"


def _isolation(pg, db: str) -> dict:
    with connect(pg.conninfo(db), runbook="test/tenant") as session:
        return {f.object: f for f in checks.run_checks(session, ids=["tenant_isolation"])}


@pytest.fixture(scope="module")
def faults_isolation(pg, faults_db):
    return _isolation(pg, faults_db)


def test_locking_out_policy_names_the_policy_and_the_member(faults_isolation):
    f = faults_isolation[LOCKED]
    assert f.severity is Severity.WARNING
    assert catalogue.LOCKOUT_POLICY in f.title
    member = f.data["proven_with"]
    assert member["seen"] == 0 and member["expected"] > 0 and member["user_id"] in f.detail
    assert f"alter policy {catalogue.LOCKOUT_POLICY} on {catalogue.LOCKOUT_TABLE} using (" in f.remediation
    assert "with check (" in f.remediation  # a `for all` policy: writes are fixed too


def test_missing_grant_is_the_sqlstate_members_get(faults_isolation):
    f = faults_isolation[UNGRANTED]
    assert f.severity is Severity.WARNING and f.value == "42501" and "42501" in f.title
    assert "recordings_tenant_isolation" in f.detail and f.data["proven_with"]["user_id"] in f.detail
    assert f.remediation.startswith(f"grant select on {catalogue.UNGRANTED_TABLE} to authenticated;")


def test_a_member_really_is_refused_and_really_sees_nothing(pg, faults_db, faults_isolation):
    """What the finding claims, done by hand as the API does it."""
    user = faults_isolation[UNGRANTED].data["proven_with"]["user_id"]
    claims = json.dumps({"sub": user, "role": "authenticated"})
    with pg.connect(faults_db, user="postgres", autocommit=False) as conn:
        conn.execute("set local role authenticated")
        conn.execute("select set_config('request.jwt.claims', %s, true)", (claims,))
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("select count(*) from public.recordings")
        conn.rollback()
        conn.execute("set local role authenticated")
        conn.execute("select set_config('request.jwt.claims', %s, true)", (claims,))
        assert conn.execute("select count(*) from public.invoices").fetchone()[0] == 0
        assert conn.execute("select count(*) from public.calls").fetchone()[0] > 0  # the member has data


def test_leaks_are_still_found_next_to_lockouts(faults_isolation):
    assert faults_isolation["public.billing_records"].severity is Severity.CRITICAL


def test_clean_seed_members_see_their_own_rows(pg, clean_db):
    found = _isolation(pg, clean_db)
    assert [f.severity for f in found.values()] == [Severity.OK]
    assert "saw their own organizations' rows" in found[""].detail


def test_cli_finds_the_guides_fix_planted_on_a_clean_copy(pg, clean_clone):
    with pg.connect(clean_clone) as admin:
        FAULTS["locking_out_policy"].apply(admin)
    out = subprocess.run(
        [sys.executable, "-m", "pgrunbooks", "check", "--target", pg.conninfo(clean_clone), "--check",
         "tenant_isolation", "--format", "json", "--fail-on", "warning"],
        capture_output=True, text=True, env=pg.env(), timeout=300,
    )
    assert out.returncode == 1, out.stderr
    findings = {f["object"]: f for f in json.loads(out.stdout)["findings"]}
    assert set(findings) == {LOCKED}
    assert findings[LOCKED]["severity"] == "warning" and catalogue.LOCKOUT_POLICY in findings[LOCKED]["title"]


def test_a_policy_narrower_than_the_tenant_is_info_not_a_lockout(pg, clean_clone):
    """Members seeing some of their own rows (a policy meant to be narrower) are told, not alarmed."""
    with pg.connect(clean_clone, user="postgres") as conn:
        conn.execute("alter policy calls_tenant_isolation on public.calls using (id::text < '8' and org_id in"
                     " (select ou.org_id from public.org_users ou where ou.user_id = (select auth.uid())))")
    found = _isolation(pg, clean_clone)
    assert found["public.calls:own_rows"].severity is Severity.INFO
    assert "only part of their own" in found["public.calls:own_rows"].title
    assert not [f for f in found.values() if f.severity in (Severity.WARNING, Severity.CRITICAL)]
