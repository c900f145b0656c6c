"""monthly/business_report's figures equal hand-written SQL on the seed (archived rows included)."""

from __future__ import annotations

import uuid
from datetime import date

import pytest

from pgrunbooks import db
from pgrunbooks.errors import ParameterError
from pgrunbooks.history import business, period
from pgrunbooks.targets import Target

HAND_WRITTEN = """
select
  (select count(*) from public.organizations where created_at < %(end)s) as orgs_total,
  (select count(*) from public.organizations where created_at >= %(start)s and created_at < %(end)s) as orgs_new,
  (select count(distinct org_id) from (
     select org_id from public.calls where created_at >= %(start)s and created_at < %(end)s
     union select org_id from public.call_archives where created_at >= %(start)s and created_at < %(end)s
     union select org_id from public.sms_messages where created_at >= %(start)s and created_at < %(end)s
     union select org_id from public.sms_archives where created_at >= %(start)s and created_at < %(end)s) a)
    as orgs_with_activity,
  (select count(*) from public.profiles where created_at < %(end)s) as users_total,
  (select count(*) from public.profiles where created_at >= %(start)s and created_at < %(end)s) as users_new,
  (select count(*) from public.org_users where created_at < %(end)s) as memberships_total,
  (select count(*) from public.org_users where created_at >= %(start)s and created_at < %(end)s) as memberships_new,
  (select count(*) from (select id from public.calls where created_at >= %(start)s and created_at < %(end)s
                         union all
                         select id from public.call_archives where created_at >= %(start)s and created_at < %(end)s) c)
    as calls,
  (select round(sum(duration) / 60.0, 1)::float8 from (
     select duration from public.calls where created_at >= %(start)s and created_at < %(end)s
     union all select duration from public.call_archives where created_at >= %(start)s and created_at < %(end)s) c)
    as call_minutes,
  (select round(avg(duration), 1)::float8 from (
     select duration from public.calls where created_at >= %(start)s and created_at < %(end)s
     union all select duration from public.call_archives where created_at >= %(start)s and created_at < %(end)s) c)
    as avg_call_seconds,
  (select count(*) from public.sms_messages where direction = 'inbound' and created_at >= %(start)s and created_at < %(end)s)
    as sms_in,
  (select count(*) from public.sms_messages where direction = 'outbound' and created_at >= %(start)s and created_at < %(end)s)
    as sms_out,
  (select sum(amount)::float8 from public.billing_records where status = 'paid'
     and created_at >= %(start)s and created_at < %(end)s) as revenue_paid
"""


@pytest.fixture(scope="module")
def seeded(pg, clean_template):
    """A copy of the clean seed (statistics not needed) with the report month's first calls moved to
    call_archives, as archiving would; shared by this module's tests, which only read it."""
    month = period.last_complete_month()
    clone = pg.create_database(f"biz_{uuid.uuid4().hex[:8]}", template=clean_template)
    with pg.connect(clone) as conn:
        conn.execute("""
            with moved as (delete from public.calls c where c.created_at >= %(start)s and c.created_at < %(mid)s
                             and not exists (select from public.recordings r where r.call_id = c.id)
                           returning c.*)
            insert into public.call_archives select m.*, now() from moved m""",
                     {"start": month.start, "mid": month.start.replace(day=10)})
        archived, = conn.execute("select count(*) from public.call_archives").fetchone()
    assert archived > 0
    try:
        with db.connect(Target("test:clone", "dsn", pg.conninfo(clone)), runbook="test/business") as session:
            yield session, month
    finally:
        pg.drop_database(clone)


def test_business_figures_equal_hand_written_sql(seeded):
    session, month = seeded
    figures = business.monthly_figures(session, month)
    assert [row["month"] for row in figures] == [str(m) for m in month.back(business.TREND_MONTHS)]
    for row, m in ((figures[-1], month), (figures[-7], month.shift(-6))):
        expected = session.fetch_one(HAND_WRITTEN, {"start": m.start, "end": m.end})
        got = {k: row[k] for k in expected}
        assert got == pytest.approx(expected)
    assert figures[-1]["calls"] > 0 and figures[-1]["revenue_paid"] > 0
    before = figures[-2]["revenue_paid"]
    assert figures[-1]["revenue_change"] == pytest.approx((figures[-1]["revenue_paid"] - before) / before, abs=1e-4)


def test_top_organizations_and_subscriptions_equal_hand_written_sql(seeded):
    session, month = seeded
    orgs = business.organizations(session, month)
    top = session.fetch_one(
        "select org_id::text, sum(amount)::float8 as paid from public.billing_records where status = 'paid'"
        " and created_at >= %(start)s and created_at < %(end)s group by org_id order by paid desc limit 1",
        {"start": month.start, "end": month.end})
    assert (orgs[0]["org_id"], float(orgs[0]["revenue_paid"])) == (top["org_id"], pytest.approx(top["paid"]))
    calls_of_top = session.scalar(
        "select count(*) from (select org_id from public.calls where created_at >= %(start)s and created_at < %(end)s"
        " union all select org_id from public.call_archives where created_at >= %(start)s and created_at < %(end)s) c"
        " where org_id::text = %(org)s", {"start": month.start, "end": month.end, "org": top["org_id"]})
    assert orgs[0]["calls"] == calls_of_top
    subs = business.subscriptions(session, month)
    assert subs["active_subscriptions"] == session.scalar(
        "select count(*) from public.organizations where subscription_status = 'active' and created_at < %s",
        (month.end,))


@pytest.mark.parametrize("text", ["2026-13", "26-01", "2026-1", "March", "2026-00", "3026-01"])
def test_a_bad_month_is_a_usage_error(text):
    with pytest.raises(ParameterError) as raised:
        period.parse_month(text)
    assert raised.value.exit_code == 3


def test_an_empty_month_is_the_last_complete_one():
    assert period.last_complete_month(date(2026, 1, 15)) == period.Month(2025, 12)
    assert str(period.parse_month("2025-07")) == "2025-07"
    assert period.Month(2025, 12).end.isoformat() == "2026-01-01T00:00:00+00:00"
