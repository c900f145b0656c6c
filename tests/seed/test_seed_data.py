"""The seeded data: deterministic for a scale and an anchor, linear in the scale, fast, shaped
like a phone platform, consistent under every foreign key. Real PostgreSQL only (the ``pg``
fixture runs each test on 18 and 15)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from psycopg import sql
from seed_helpers import scalar

from pgrunbooks.seed import Sizes, seed

ANCHOR = datetime(2025, 6, 15, tzinfo=timezone.utc)


def _content_hash(conn, table: str) -> str:
    return scalar(
        conn,
        sql.SQL("select md5(string_agg(t::text, '|' order by t.id)) from {} t").format(
            sql.Identifier(*table.split("."))
        ),
    )


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
        span = scalar(conn, "select max(created_at) - min(created_at) from public.calls")
    assert calls_old > 0 and calls_new > 0 and future == 0
    assert sms_old > 0 and sms_new > 0
    assert span.days >= 700  # two years of history


def test_distributions_look_like_a_phone_platform(pg, clean_db):
    with pg.connect(clean_db) as conn:
        directions = dict(conn.execute("select direction, count(*) from public.calls group by 1").fetchall())
        statuses = dict(conn.execute("select status, count(*) from public.calls group by 1").fetchall())
        unassigned = scalar(conn, "select count(*) from public.phone_numbers where not assigned_to_org")
        busy_orgs = scalar(
            conn,
            "select count(*) from (select org_id from public.org_users group by org_id having count(*) >= 3) o",
        )
        multi = scalar(
            conn,
            "select count(*) from (select user_id from public.org_users group by user_id having count(*) = 2) u",
        )
        max_memberships = scalar(
            conn, "select max(n) from (select count(*) n from public.org_users group by user_id) u"
        )
        zero_duration_completed = scalar(
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
            missing = scalar(
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
