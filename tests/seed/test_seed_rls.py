"""Roles and row level security as on Supabase: postgres switches to the API roles, RLS
isolates tenants, anon reads nothing in the clean database, the leaky policy leaks."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql
from seed_helpers import scalar

# Tables whose rows belong to one organization (org_id) and that members read.
TENANT_TABLES = (
    "calls", "sms_messages", "invoices", "org_users", "phone_numbers", "billing_records",
    "recordings", "archives",
)


def _single_org_member(conn) -> tuple[str, str, str]:
    """(user id, their only org, another org) for an ordinary member."""
    user, org = conn.execute(
        """
        select ou.user_id, min(ou.org_id::text)::uuid from public.org_users ou
        join public.profiles p on p.id = ou.user_id
        where p.global_role = 'user'
          and exists (select 1 from public.organizations o where o.id = ou.org_id)
        group by ou.user_id having count(*) = 1
        order by ou.user_id limit 1
        """
    ).fetchone()
    other = scalar(conn, "select id from public.organizations where id <> %s order by id limit 1", (org,))
    return str(user), str(org), str(other)


def _as_user(conn, user_id: str) -> None:
    conn.execute("set local role authenticated")
    conn.execute(
        "select set_config('request.jwt.claims',"
        " json_build_object('sub', %s::text, 'role', 'authenticated')::text, true)",
        (user_id,),
    )


def test_postgres_can_switch_to_the_api_roles(pg, clean_db):
    with pg.connect(clean_db, user="postgres") as conn:
        for role in ("authenticated", "anon", "service_role"):
            with conn.transaction():
                conn.execute(sql.SQL("set local role {}").format(sql.Identifier(role)))
                assert scalar(conn, "select current_user") == role
        attrs = conn.execute(
            "select rolsuper, rolbypassrls, rolcreaterole, rolcreatedb from pg_roles where rolname = 'postgres'"
        ).fetchone()
        assert attrs == (False, True, True, True)
        timeouts = dict(
            conn.execute(
                "select r.rolname, s.setconfig from pg_db_role_setting s join pg_roles r on r.oid = s.setrole"
                " where r.rolname in ('anon', 'authenticated', 'authenticator')"
            ).fetchall()
        )
        # pg_stat_statements as on Supabase: readable by postgres (pg_monitor), resettable by it
        assert scalar(conn, "select count(*) from extensions.pg_stat_statements where queryid is not null") > 0
        assert scalar(
            conn,
            "select bool_and(has_function_privilege('postgres', p.oid, 'execute')) from pg_proc p"
            " where p.proname = 'pg_stat_statements_reset' and p.pronamespace = 'extensions'::regnamespace",
        )
        assert scalar(conn, "select count(*) from pg_extension where extname = 'pgstattuple'") == 0
        assert timeouts == {
            "anon": ["statement_timeout=3s"],
            "authenticated": ["statement_timeout=8s"],
            "authenticator": ["statement_timeout=8s"],
        }


def test_rls_isolates_tenants(pg, clean_db):
    with pg.connect(clean_db, user="postgres") as conn:
        user, org_a, org_b = _single_org_member(conn)
        truth = {
            t: scalar(conn, sql.SQL("select count(*) from {} where org_id = %s").format(sql.Identifier(t)), (org_a,))
            for t in TENANT_TABLES
        }
        with conn.transaction(force_rollback=True):
            _as_user(conn, user)
            assert scalar(conn, "select auth.uid()::text") == user
            for table in TENANT_TABLES:
                seen, foreign, of_b = conn.execute(
                    sql.SQL(
                        "select count(*), count(*) filter (where org_id <> %s), count(*) filter (where org_id = %s)"
                        " from {}"
                    ).format(sql.Identifier(table)),
                    (org_a, org_b),
                ).fetchone()
                assert seen == truth[table] and foreign == 0 and of_b == 0, table
            assert truth["calls"] > 0 and truth["sms_messages"] > 0 and truth["invoices"] > 0
            assert [str(r[0]) for r in conn.execute("select id from public.organizations")] == [org_a]
            # colleagues' profiles are visible, strangers' are not
            profiles = {str(r[0]) for r in conn.execute("select id from public.profiles")}
        with conn.transaction(force_rollback=True):
            colleagues = {
                str(r[0]) for r in conn.execute("select user_id from public.org_users where org_id = %s", (org_a,))
            }
        assert profiles == colleagues


def test_rls_blocks_writes_into_another_tenant(pg, clean_db):
    with pg.connect(clean_db, user="postgres") as conn:
        user, org_a, org_b = _single_org_member(conn)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            with conn.transaction():
                _as_user(conn, user)
                conn.execute(
                    "insert into public.sms_messages (org_id, direction, from_number, to_number, body, status)"
                    " values (%s, 'outbound', '+1', '+2', 'hi', 'queued')",
                    (org_b,),
                )


def test_anon_reads_nothing_in_the_clean_db(pg, clean_db):
    with pg.connect(clean_db, user="postgres") as conn:
        for table in TENANT_TABLES:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                with conn.transaction():
                    conn.execute("set local role anon")
                    conn.execute(sql.SQL("select 1 from {} limit 1").format(sql.Identifier(table)))


def test_leaky_policy_leaks_billing_records_of_other_orgs(pg, faults_db):
    with pg.connect(faults_db, user="postgres") as conn:
        user, org_a, _ = _single_org_member(conn)
        with conn.transaction(force_rollback=True):
            _as_user(conn, user)
            leaked = scalar(conn, "select count(*) from public.billing_records where org_id <> %s", (org_a,))
            calls_leaked = scalar(conn, "select count(*) from public.calls where org_id <> %s", (org_a,))
        with conn.transaction(force_rollback=True):
            conn.execute("set local role anon")
            anon_orgs = scalar(conn, "select count(distinct org_id) from public.phone_numbers")
    assert leaked > 0
    assert calls_leaked == 0  # the other tenant tables still hold
    assert anon_orgs > 1  # the anon_grant fault


def test_auth_uid_reads_the_claims_json_and_the_legacy_setting(pg, clean_db):
    a, b = "11111111-1111-1111-1111-111111111111", "22222222-2222-2222-2222-222222222222"
    with pg.connect(clean_db, user="postgres") as conn:
        with conn.transaction(force_rollback=True):
            conn.execute(
                "select set_config('request.jwt.claims', json_build_object('sub', %s::text, 'role',"
                " 'authenticated', 'email', 'a@example.com')::text, true)",
                (a,),
            )
            assert conn.execute(
                "select auth.uid()::text, auth.role(), auth.email(), auth.jwt() ->> 'sub'"
            ).fetchone() == (a, "authenticated", "a@example.com", a)
        with conn.transaction(force_rollback=True):
            conn.execute("select set_config('request.jwt.claim.sub', %s, true)", (b,))
            conn.execute("select set_config('request.jwt.claim.role', 'service_role', true)")
            assert conn.execute("select auth.uid()::text, auth.role()").fetchone() == (b, "service_role")
        with conn.transaction(force_rollback=True):
            assert scalar(conn, "select auth.uid()") is None  # settings were local to the transactions
