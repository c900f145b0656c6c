"""The seeded sandbox: deterministic data, planted faults that are really there
(and really absent from the clean database), RLS that really isolates tenants,
and runtime faults that show up in pg_stat_activity and clean up after
themselves. Real PostgreSQL only (the ``pg`` fixture runs each test on 18 and 15)."""

from __future__ import annotations

import re
import time
from datetime import datetime, timezone
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from pgrunbooks.seed import (
    CLUSTER_FAULTS,
    DATABASE_FAULTS,
    FAULTS,
    RUNTIME_FAULTS,
    RUNTIME_FINDS,
    Sizes,
    UnknownFault,
    apply_faults,
    parse_faults,
    revert_faults,
    seed,
    settle,
)
from pgrunbooks.errors import UsageError
from pgrunbooks.seed import runtime

ANCHOR = datetime(2025, 6, 15, tzinfo=timezone.utc)
PROJECT = Path(__file__).resolve().parents[1]

# Tables whose rows belong to one organization (org_id) and that members read.
TENANT_TABLES = (
    "calls", "sms_messages", "invoices", "org_users", "phone_numbers", "billing_records",
    "recordings", "archives",
)


def _scalar(conn, query, params=None):
    return conn.execute(query, params).fetchone()[0]


def _content_hash(conn, table: str) -> str:
    return _scalar(
        conn,
        sql.SQL("select md5(string_agg(t::text, '|' order by t.id)) from {} t").format(
            sql.Identifier(*table.split("."))
        ),
    )


# ------------------------------------------------------------------ data


def test_same_scale_and_anchor_seed_identical_rows(pg, fresh_db):
    second = pg.create_database(fresh_db + "_b")
    try:
        results, hashes = [], []
        for db in (fresh_db, second):
            with pg.connect(db) as conn:
                conn.execute("set timezone = 'UTC'")
                results.append(seed(conn, scale=0.05, faults="none", anchor=ANCHOR))
                hashes.append(
                    {t: _content_hash(conn, t) for t in (
                        "public.calls", "public.sms_messages", "public.recordings", "public.org_users",
                        "public.invoices", "public.billing_records", "public.db_metrics", "auth.users")}
                )
        assert results[0].counts == results[1].counts
        assert hashes[0] == hashes[1]
        sizes = Sizes.for_scale(0.05)
        assert results[0].counts["calls"] == sizes.calls
        assert results[0].counts["sms_messages"] == sizes.sms
        assert results[0].counts["organizations"] == sizes.orgs
        assert results[0].faults == ()
    finally:
        pg.drop_database(second)


def test_a_different_anchor_moves_the_data(pg, fresh_db):
    with pg.connect(fresh_db) as conn:
        seed(conn, scale=0.02, faults="none", anchor=datetime(2024, 1, 1, tzinfo=timezone.utc))
        newest, oldest = conn.execute("select max(created_at), min(created_at) from public.calls").fetchone()
    assert newest < datetime(2024, 1, 1, tzinfo=timezone.utc)
    assert oldest >= datetime(2022, 1, 1, tzinfo=timezone.utc)


def test_rows_scale_linearly_to_a_million_calls():
    one, twenty = Sizes.for_scale(1), Sizes.for_scale(20)
    assert twenty.calls >= 1_000_000 and twenty.sms >= 1_000_000
    assert twenty.calls == 20 * one.calls and twenty.billing == 20 * one.billing
    with pytest.raises(ValueError):
        Sizes.for_scale(0)


def test_scale_one_seeds_in_a_few_seconds(pg, fresh_db):
    with pg.connect(fresh_db) as conn:
        result = seed(conn, scale=1, faults="none")
    assert result.seconds < 20, f"seeding scale 1 took {result.seconds:.1f}s"
    sizes = Sizes.for_scale(1)
    assert result.counts["calls"] == sizes.calls == 50_000
    assert result.counts["sms_messages"] == 50_000
    assert 8_000 < result.counts["recordings"] < 12_000
    assert result.counts["auth.users"] == result.counts["profiles"] == 300
    assert result.counts["call_archives"] == 0


def test_calls_and_sms_exist_on_both_sides_of_the_archive_cutoffs(pg, clean_db):
    with pg.connect(clean_db) as conn:
        calls_old, calls_new, future = conn.execute(
            "select count(*) filter (where created_at < now() - interval '1 year'),"
            "       count(*) filter (where created_at >= now() - interval '1 year'),"
            "       count(*) filter (where created_at > now())"
            " from public.calls"
        ).fetchone()
        sms_old, sms_new = conn.execute(
            "select count(*) filter (where created_at < now() - interval '6 months'),"
            "       count(*) filter (where created_at >= now() - interval '6 months')"
            " from public.sms_messages"
        ).fetchone()
        span = _scalar(conn, "select max(created_at) - min(created_at) from public.calls")
    assert calls_old > 0 and calls_new > 0 and future == 0
    assert sms_old > 0 and sms_new > 0
    assert span.days >= 700  # two years of history


def test_distributions_look_like_a_phone_platform(pg, clean_db):
    with pg.connect(clean_db) as conn:
        directions = dict(conn.execute("select direction, count(*) from public.calls group by 1").fetchall())
        statuses = dict(conn.execute("select status, count(*) from public.calls group by 1").fetchall())
        unassigned = _scalar(conn, "select count(*) from public.phone_numbers where not assigned_to_org")
        busy_orgs = _scalar(
            conn,
            "select count(*) from (select org_id from public.org_users group by org_id having count(*) >= 3) o",
        )
        multi = _scalar(
            conn,
            "select count(*) from (select user_id from public.org_users group by user_id having count(*) = 2) u",
        )
        max_memberships = _scalar(
            conn, "select max(n) from (select count(*) n from public.org_users group by user_id) u"
        )
        zero_duration_completed = _scalar(
            conn, "select count(*) from public.calls where status = 'completed' and duration = 0"
        )
    assert set(directions) == {"inbound", "outbound"} and min(directions.values()) > 1000
    assert statuses["completed"] > sum(statuses.values()) / 2 and len(statuses) == 6
    assert unassigned > 0
    assert busy_orgs >= 2 and multi > 0 and max_memberships == 2
    assert zero_duration_completed == 0


def test_every_foreign_key_holds_in_the_seeded_data(pg, clean_db):
    """The loader skips per-row FK triggers for speed; the rows must still be consistent."""
    with pg.connect(clean_db) as conn:
        fks = conn.execute(
            """
            select c.conrelid::regclass::text, a.attname, c.confrelid::regclass::text, r.attname
            from pg_constraint c
            join pg_attribute a on a.attrelid = c.conrelid and a.attnum = c.conkey[1]
            join pg_attribute r on r.attrelid = c.confrelid and r.attnum = c.confkey[1]
            where c.contype = 'f' and c.connamespace = 'public'::regnamespace
            """
        ).fetchall()
        assert len(fks) >= 13
        for table, column, ref, ref_column in fks:
            missing = _scalar(
                conn,
                sql.SQL(
                    "select count(*) from {t} x where x.{c} is not null"
                    " and not exists (select 1 from {r} y where y.{rc} = x.{c})"
                ).format(
                    t=sql.SQL(table), c=sql.Identifier(column), r=sql.SQL(ref), rc=sql.Identifier(ref_column)
                ),
            )
            assert missing == 0, f"{table}.{column} has {missing} rows without a {ref} row"


def test_archive_tables_line_up_with_the_live_tables(pg, clean_clone):
    with pg.connect(clean_clone) as conn:
        def columns(table):
            return conn.execute(
                "select attname, format_type(atttypid, atttypmod) from pg_attribute"
                " where attrelid = %s::regclass and attnum > 0 and not attisdropped order by attnum",
                (table,),
            ).fetchall()

        for live, archive in (("public.calls", "public.call_archives"),
                              ("public.sms_messages", "public.sms_archives")):
            assert columns(archive) == columns(live) + [("archived_at", "timestamp with time zone")]
        # the guide's archiving statement lines up column by column
        with conn.transaction(force_rollback=True):
            moved = conn.execute(
                "insert into public.call_archives select c.*, now() from public.calls c"
                " where c.created_at < now() - interval '1 year'"
            ).rowcount
            assert moved > 0


# ------------------------------------------------------------------ faults


def test_unknown_fault_names_are_rejected_with_the_valid_ones(pg, fresh_db):
    with pytest.raises(UnknownFault) as caught:
        parse_faults("orphaned_rows,no_such_fault")
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, UsageError) and caught.value.exit_code == 3  # CLI: bad usage
    message = str(caught.value)
    assert "no_such_fault" in message and "orphaned_rows" in message and "anon_grant" in message
    # nothing is touched before the name is checked
    with pg.connect(fresh_db) as conn:
        with pytest.raises(UnknownFault):
            seed(conn, faults="typo_fault")
        assert _scalar(conn, "select to_regclass('public.calls')") is None


def test_fault_specs():
    assert parse_faults("all") == list(FAULTS)
    assert parse_faults("none") == [] == parse_faults("") == parse_faults(None)
    assert parse_faults("unused_index, leaky_policy") == ["leaky_policy", "unused_index"]
    assert parse_faults(["dead_tuples", "orphaned_rows"]) == ["orphaned_rows", "dead_tuples"]
    assert parse_faults("all,unused_index") == list(FAULTS)
    assert set(DATABASE_FAULTS) | set(CLUSTER_FAULTS) == set(FAULTS)
    assert CLUSTER_FAULTS == ("extra_superuser",)
    for fault in FAULTS.values():
        assert fault.finds and fault.description and fault.scope in ("database", "cluster")
        assert (fault.revert is not None) == (fault.scope == "cluster")


@pytest.mark.parametrize("name", DATABASE_FAULTS)
def test_planted_fault_is_present_in_the_faults_db(pg, faults_db, name):
    with pg.connect(faults_db) as conn:
        assert FAULTS[name].present(conn)


@pytest.mark.parametrize("name", list(FAULTS))
def test_no_fault_is_present_in_the_clean_db(pg, clean_db, name):
    with pg.connect(clean_db) as conn:
        assert not FAULTS[name].present(conn)


def test_cluster_fault_is_applied_and_reverted(pg, fresh_db):
    with pg.connect(fresh_db) as conn, pg.connect("postgres") as other:
        try:
            assert apply_faults(conn, "extra_superuser") == ["extra_superuser"]
            assert FAULTS["extra_superuser"].present(conn)
            assert FAULTS["extra_superuser"].present(other)  # every database sees it
            assert _scalar(other, "select rolsuper and rolcanlogin from pg_roles where rolname = 'legacy_admin'")
        finally:
            revert_faults(conn, "extra_superuser")
        assert not FAULTS["extra_superuser"].present(conn)
        assert not FAULTS["extra_superuser"].present(other)


def _zero_scan_indexes(conn) -> set[str]:
    return {
        r[0]
        for r in conn.execute(
            """
            select s.indexrelname from pg_stat_user_indexes s
            join pg_index i on i.indexrelid = s.indexrelid
            where s.idx_scan = 0 and i.indisvalid
              and not exists (select 1 from pg_constraint c
                              where c.conindid = s.indexrelid and c.contype in ('p', 'u', 'x'))
            """
        )
    }


def test_clean_db_gives_the_checks_nothing_to_flag(pg, clean_db):
    with pg.connect(clean_db) as conn:
        # every foreign key has an index that leads with its columns
        unindexed = conn.execute(
            """
            select c.conname from pg_constraint c
            where c.contype = 'f' and c.connamespace = 'public'::regnamespace
              and not exists (select 1 from pg_index i where i.indrelid = c.conrelid
                              and (i.indkey::int2[])[0:cardinality(c.conkey) - 1] = c.conkey)
            """
        ).fetchall()
        assert unindexed == []
        # every public table has RLS and at least one policy; none is `true`; auth.uid() is wrapped
        tables = conn.execute(
            """
            select c.relname, c.relrowsecurity, (select count(*) from pg_policy p where p.polrelid = c.oid)
            from pg_class c where c.relnamespace = 'public'::regnamespace and c.relkind = 'r'
            """
        ).fetchall()
        assert len(tables) == 13
        assert [t for t in tables if not t[1] or t[2] == 0] == []
        policies = conn.execute(
            "select policyname, coalesce(qual, ''), coalesce(with_check, '') from pg_policies"
            " where schemaname = 'public'"
        ).fetchall()
        for name, qual, check in policies:
            assert qual != "true" and check != "true", name
            for expr in (qual, check):
                assert "auth.uid()" not in re.sub(r"SELECT auth\.uid\(\)", "", expr), name
        # no duplicate, prefix or invalid index
        indexes = conn.execute(
            """
            select indrelid, indexrelid::regclass::text, indkey::text, indisvalid
            from pg_index where indrelid in (select oid from pg_class
                                             where relnamespace = 'public'::regnamespace)
            """
        ).fetchall()
        assert all(valid for *_, valid in indexes)
        for rel, name, keys, _ in indexes:
            for rel2, name2, keys2, _ in indexes:
                if rel == rel2 and name != name2:
                    assert not (keys2 + " ").startswith(keys + " "), f"{name} duplicates or prefixes {name2}"
        # every index was used; no dead tuples; everything analyzed
        assert _zero_scan_indexes(conn) == set()
        stats = conn.execute(
            "select relname, n_live_tup, n_dead_tup, coalesce(last_analyze, last_autoanalyze) is not null"
            " from pg_stat_user_tables"
        ).fetchall()
        assert [s for s in stats if s[2] > 0 or not s[3]] == []
        # sequences far from their maximum
        assert _scalar(conn, "select max(coalesce(last_value, 0)::float8 / max_value) from pg_sequences") < 0.01
        # nothing granted to anon, no unpinned security definer, one superuser
        anon = conn.execute(
            """
            select c.relname from pg_class c
            where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'v', 'm')
              and has_table_privilege('anon', c.oid, 'select, insert, update, delete')
            """
        ).fetchall()
        assert anon == []
        definers = conn.execute(
            "select proname, proconfig from pg_proc where pronamespace = 'public'::regnamespace and prosecdef"
        ).fetchall()
        assert definers == [("user_org_ids", ["search_path=\"\""])]
        assert _scalar(conn, "select array_agg(rolname) from pg_roles where rolsuper") == ["supabase_admin"]


def test_faults_db_statistics_show_the_planted_maintenance_faults(pg, faults_db):
    with pg.connect(faults_db) as conn:
        assert _zero_scan_indexes(conn) == {"calls_to_number_idx"}
        live, dead = conn.execute(
            "select n_live_tup, n_dead_tup from pg_stat_user_tables where relname = 'db_metrics'"
        ).fetchone()
        assert dead > 0.4 * (live + dead)
        not_analyzed = conn.execute(
            "select relname, n_live_tup from pg_stat_user_tables"
            " where last_analyze is null and last_autoanalyze is null"
        ).fetchall()
        assert not_analyzed == [("user_import_staging", 1000)]
        assert _scalar(conn, "select reltuples from pg_class where oid = 'public.user_import_staging'::regclass") < 0


def test_settle_is_fast_and_repeatable(pg, faults_clone):
    with pg.connect(faults_clone) as conn:
        started = time.monotonic()
        settle(conn, DATABASE_FAULTS)
        assert time.monotonic() - started < 2.0
        assert all(FAULTS[name].present(conn) for name in DATABASE_FAULTS)


def test_settle_keeps_faults_even_when_not_told(pg, faults_clone):
    with pg.connect(faults_clone) as conn:
        settle(conn)  # no fault list: planted state is detected, not vacuumed away
    with pg.connect(faults_clone) as conn:
        assert FAULTS["dead_tuples"].present(conn)
        assert FAULTS["never_analyzed"].present(conn)
        assert _zero_scan_indexes(conn) == {"calls_to_number_idx"}


# ------------------------------------------------------------------ roles and RLS


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
    other = _scalar(conn, "select id from public.organizations where id <> %s order by id limit 1", (org,))
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
                assert _scalar(conn, "select current_user") == role
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
        assert _scalar(conn, "select count(*) from extensions.pg_stat_statements where queryid is not null") > 0
        assert _scalar(
            conn,
            "select bool_and(has_function_privilege('postgres', p.oid, 'execute')) from pg_proc p"
            " where p.proname = 'pg_stat_statements_reset' and p.pronamespace = 'extensions'::regnamespace",
        )
        assert _scalar(conn, "select count(*) from pg_extension where extname = 'pgstattuple'") == 0
        assert timeouts == {
            "anon": ["statement_timeout=3s"],
            "authenticated": ["statement_timeout=8s"],
            "authenticator": ["statement_timeout=8s"],
        }


def test_rls_isolates_tenants(pg, clean_db):
    with pg.connect(clean_db, user="postgres") as conn:
        user, org_a, org_b = _single_org_member(conn)
        truth = {
            t: _scalar(conn, sql.SQL("select count(*) from {} where org_id = %s").format(sql.Identifier(t)), (org_a,))
            for t in TENANT_TABLES
        }
        with conn.transaction(force_rollback=True):
            _as_user(conn, user)
            assert _scalar(conn, "select auth.uid()::text") == user
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
            leaked = _scalar(conn, "select count(*) from public.billing_records where org_id <> %s", (org_a,))
            calls_leaked = _scalar(conn, "select count(*) from public.calls where org_id <> %s", (org_a,))
        with conn.transaction(force_rollback=True):
            conn.execute("set local role anon")
            anon_orgs = _scalar(conn, "select count(distinct org_id) from public.phone_numbers")
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
            assert _scalar(conn, "select auth.uid()") is None  # settings were local to the transactions


# ------------------------------------------------------------------ runtime faults


def _activity(conn, pids):
    return {
        r[0]: r[1:]
        for r in conn.execute(
            "select pid, state, application_name, wait_event_type, query from pg_stat_activity"
            " where pid = any(%s)",
            (list(pids),),
        )
    }


def _wait_gone(conn, pids, timeout=10.0):
    deadline = time.monotonic() + timeout
    while _activity(conn, pids):
        assert time.monotonic() < deadline, f"sessions {pids} still there"
        time.sleep(0.05)


def test_runtime_fault_catalogue():
    assert set(RUNTIME_FAULTS) == set(RUNTIME_FINDS)
    assert RUNTIME_FINDS["blocking_chain"] == ("blocking_locks",)


def test_long_running_query(pg, clean_db):
    conninfo = pg.conninfo(clean_db)
    with pg.connect(clean_db) as mon:
        with runtime.long_running_query(conninfo, seconds=600) as pid:
            state, app, _, query = _activity(mon, [pid])[pid]
            assert state == "active" and app == "victorysync/api" and "pg_sleep" in query
        _wait_gone(mon, [pid])


def test_runtime_fault_survives_its_session_being_terminated(pg, clean_db):
    with pg.connect(clean_db) as mon:
        with runtime.long_running_query(pg.conninfo(clean_db)) as pid:
            assert _scalar(mon, "select pg_terminate_backend(%s)", (pid,))
        _wait_gone(mon, [pid])


def test_idle_in_transaction_holds_a_row_lock(pg, clean_db):
    with pg.connect(clean_db) as mon:
        with runtime.idle_in_transaction(pg.conninfo(clean_db)) as pid:
            assert _activity(mon, [pid])[pid][0] == "idle in transaction"
            assert _scalar(
                mon, "select count(*) from pg_locks where pid = %s and locktype = 'transactionid'", (pid,)
            ) == 1
            with mon.transaction(force_rollback=True):
                mon.execute("set local lock_timeout = '100ms'")
                with pytest.raises(psycopg.errors.LockNotAvailable):
                    mon.execute("select 1 from public.organizations for update")
        _wait_gone(mon, [pid])


def test_blocking_chain(pg, clean_db):
    with pg.connect(clean_db) as mon:
        before = mon.execute("select id, updated_at from public.organizations order by id").fetchall()
        with runtime.blocking_chain(pg.conninfo(clean_db), depth=3) as pids:
            assert len(pids) == 3
            activity = _activity(mon, pids)
            assert activity[pids[0]][0] == "idle in transaction"
            assert all(activity[p][2] == "Lock" for p in pids[1:])
            assert pids[0] in _scalar(mon, "select pg_blocking_pids(%s)", (pids[1],))
            blockers = _scalar(mon, "select pg_blocking_pids(%s)", (pids[2],))
            assert blockers and set(blockers) <= set(pids[:2])
        _wait_gone(mon, pids)
        after = mon.execute("select id, updated_at from public.organizations order by id").fetchall()
    assert after == before  # no waiter's update committed


def test_idle_connections(pg, clean_db):
    with pg.connect(clean_db) as mon:
        with runtime.idle_connections(pg.conninfo(clean_db), 5) as pids:
            assert len(set(pids)) == 5
            assert {a[0] for a in _activity(mon, pids).values()} == {"idle"}
        _wait_gone(mon, pids)


# ------------------------------------------------------------------ docs


def test_faults_are_documented():
    text = (PROJECT / "docs" / "faults.md").read_text()
    for name, fault in FAULTS.items():
        assert f"`{name}`" in text, name
        for check in fault.finds:
            assert f"`{check}`" in text, (name, check)
    for name, checks in RUNTIME_FINDS.items():
        assert f"`{name}`" in text and all(f"`{c}`" in text for c in checks)
