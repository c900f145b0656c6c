"""Statistics after ``settle``: the clean database gives the checks nothing to flag, the faults
database shows its planted maintenance faults, and settle keeps them even when not told."""

from __future__ import annotations

import re
import time

from seed_helpers import scalar, zero_scan_indexes

from pgrunbooks.seed import DATABASE_FAULTS, FAULTS, settle


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
        assert zero_scan_indexes(conn) == set()
        stats = conn.execute(
            "select relname, n_live_tup, n_dead_tup, coalesce(last_analyze, last_autoanalyze) is not null"
            " from pg_stat_user_tables"
        ).fetchall()
        assert [s for s in stats if s[2] > 0 or not s[3]] == []
        # sequences far from their maximum
        assert scalar(conn, "select max(coalesce(last_value, 0)::float8 / max_value) from pg_sequences") < 0.01
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
        assert scalar(conn, "select array_agg(rolname) from pg_roles where rolsuper") == ["supabase_admin"]


def test_faults_db_statistics_show_the_planted_maintenance_faults(pg, faults_db):
    with pg.connect(faults_db) as conn:
        assert zero_scan_indexes(conn) == {"calls_to_number_idx"}
        live, dead = conn.execute(
            "select n_live_tup, n_dead_tup from pg_stat_user_tables where relname = 'db_metrics'"
        ).fetchone()
        assert dead > 0.4 * (live + dead)
        not_analyzed = conn.execute(
            "select relname, n_live_tup from pg_stat_user_tables"
            " where last_analyze is null and last_autoanalyze is null"
        ).fetchall()
        assert not_analyzed == [("user_import_staging", 1000)]
        assert scalar(conn, "select reltuples from pg_class where oid = 'public.user_import_staging'::regclass") < 0


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
        assert zero_scan_indexes(conn) == {"calls_to_number_idx"}
