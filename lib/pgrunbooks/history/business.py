"""The monthly business figures of the guide's "Generate Reports", done right.

What the guide gets wrong, and what is done here instead:

* "new this month" was the last 30 days; here a month is a calendar month in UTC
  (``[start, end)``, bound as instants, so the session's TimeZone changes nothing);
* "total_minutes" summed seconds; minutes here are ``sum(duration) / 60``;
* "users" counted ``org_users`` rows; users are profiles, memberships are ``org_users`` rows;
* revenue summed every ``billing_records`` row (pending, failed and refunded included) or every
  paid row ever; here it is the ``paid`` rows created in the month;
* archived calls and SMS (``call_archives``, ``sms_archives``) were forgotten: a month past the
  retention window lost its activity. Both live and archive tables are counted here.

``active`` organisations are those with ``subscription_status = 'active'`` (their current
status: the schema keeps no status history) and, separately, those with activity (a call or an
SMS) in the month. Everything is read in one read-only transaction.
"""

from __future__ import annotations

from typing import Any

from pgrunbooks.db import Session
from pgrunbooks.findings import Finding, Severity
from pgrunbooks.history.period import Month

#: months in the month-over-month series (the report's month and the twelve before it)
TREND_MONTHS = 13

# Each query takes %(first)s (the first month's start) and %(end)s (the report month's end) and
# returns one row per UTC month with activity, keyed by "month" (a timestamptz at the month's start).
MONTHLY_SQL = {
    "calls": """
        select pg_catalog.date_trunc('month', c.created_at, 'UTC') as month,
               count(*) as calls, coalesce(sum(c.duration), 0)::bigint as call_seconds,
               count(distinct c.org_id) as calling_orgs
        from (select org_id, duration, created_at from public.calls
              where created_at >= %(first)s and created_at < %(end)s
              union all
              select org_id, duration, created_at from public.call_archives
              where created_at >= %(first)s and created_at < %(end)s) c
        group by 1 order by 1""",
    "sms": """
        select pg_catalog.date_trunc('month', m.created_at, 'UTC') as month,
               count(*) filter (where m.direction = 'inbound') as sms_in,
               count(*) filter (where m.direction = 'outbound') as sms_out
        from (select direction, created_at from public.sms_messages
              where created_at >= %(first)s and created_at < %(end)s
              union all
              select direction, created_at from public.sms_archives
              where created_at >= %(first)s and created_at < %(end)s) m
        group by 1 order by 1""",
    "active": """
        select pg_catalog.date_trunc('month', a.created_at, 'UTC') as month,
               count(distinct a.org_id) as orgs_with_activity
        from (select org_id, created_at from public.calls where created_at >= %(first)s and created_at < %(end)s
              union all
              select org_id, created_at from public.call_archives where created_at >= %(first)s and created_at < %(end)s
              union all
              select org_id, created_at from public.sms_messages where created_at >= %(first)s and created_at < %(end)s
              union all
              select org_id, created_at from public.sms_archives where created_at >= %(first)s and created_at < %(end)s) a
        group by 1 order by 1""",
    "revenue": """
        select pg_catalog.date_trunc('month', b.created_at, 'UTC') as month,
               coalesce(sum(b.amount) filter (where b.status = 'paid'), 0)::numeric(14, 2) as revenue_paid,
               count(*) filter (where b.status = 'paid') as paid_records,
               coalesce(sum(b.amount) filter (where b.status = 'refunded'), 0)::numeric(14, 2) as refunded
        from public.billing_records b
        where b.created_at >= %(first)s and b.created_at < %(end)s
        group by 1 order by 1""",
    "new_orgs": """
        select pg_catalog.date_trunc('month', o.created_at, 'UTC') as month, count(*) as new_orgs
        from public.organizations o where o.created_at >= %(first)s and o.created_at < %(end)s
        group by 1 order by 1""",
    "new_users": """
        select pg_catalog.date_trunc('month', p.created_at, 'UTC') as month, count(*) as new_users
        from public.profiles p where p.created_at >= %(first)s and p.created_at < %(end)s
        group by 1 order by 1""",
    "new_memberships": """
        select pg_catalog.date_trunc('month', u.created_at, 'UTC') as month, count(*) as new_memberships
        from public.org_users u where u.created_at >= %(first)s and u.created_at < %(end)s
        group by 1 order by 1""",
}

# Totals before the first month, so each month's total is "before + new up to that month".
BEFORE_SQL = """
select (select count(*) from public.organizations where created_at < %(first)s) as orgs,
       (select count(*) from public.profiles where created_at < %(first)s) as users,
       (select count(*) from public.org_users where created_at < %(first)s) as memberships
"""

CURRENT_SQL = """
select count(*) filter (where o.subscription_status = 'active') as active_subscriptions,
       count(*) filter (where o.subscription_status = 'trialing') as trialing,
       count(*) filter (where o.subscription_status = 'past_due') as past_due,
       count(*) filter (where o.subscription_status = 'canceled') as canceled,
       count(*) filter (where exists (select from public.org_users u
                                      where u.org_id = o.id and u.created_at < %(end)s)) as orgs_with_members
from public.organizations o
where o.created_at < %(end)s
"""

ORGANIZATIONS_SQL = """
with calls as (
  select org_id, count(*) as calls, sum(duration) as seconds
  from (select org_id, duration from public.calls where created_at >= %(start)s and created_at < %(end)s
        union all
        select org_id, duration from public.call_archives where created_at >= %(start)s and created_at < %(end)s) c
  group by org_id
), sms as (
  select org_id, count(*) filter (where direction = 'inbound') as sms_in,
         count(*) filter (where direction = 'outbound') as sms_out
  from (select org_id, direction from public.sms_messages where created_at >= %(start)s and created_at < %(end)s
        union all
        select org_id, direction from public.sms_archives where created_at >= %(start)s and created_at < %(end)s) m
  group by org_id
), revenue as (
  select org_id, sum(amount) as revenue_paid from public.billing_records
  where status = 'paid' and created_at >= %(start)s and created_at < %(end)s
  group by org_id
)
select o.id::text as org_id, o.name, o.plan, o.subscription_status,
       coalesce(r.revenue_paid, 0)::numeric(14, 2) as revenue_paid,
       coalesce(c.calls, 0) as calls,
       round(coalesce(c.seconds, 0) / 60.0, 1)::float8 as call_minutes,
       coalesce(s.sms_in, 0) as sms_in, coalesce(s.sms_out, 0) as sms_out
from public.organizations o
left join calls c on c.org_id = o.id
left join sms s on s.org_id = o.id
left join revenue r on r.org_id = o.id
where o.created_at < %(end)s
order by revenue_paid desc, calls desc, o.name, o.id
"""


def monthly_figures(session: Session, month: Month, *, months: int = TREND_MONTHS) -> list[dict[str, Any]]:
    """One row per month, oldest first, ending with ``month``: every figure of the report."""
    window = month.back(months)
    params = {"first": window[0].start, "end": month.end}
    with session.transaction() as cur:
        per_query = {}
        for name, query in MONTHLY_SQL.items():
            cur.execute(query, params)
            per_query[name] = {row["month"]: row for row in cur.fetchall()}
        cur.execute(BEFORE_SQL, params)
        before = cur.fetchone()
    rows = []
    totals = {"orgs": before["orgs"], "users": before["users"], "memberships": before["memberships"]}
    for m in window:
        get = lambda name, column: (per_query[name].get(m.start) or {}).get(column) or 0  # noqa: E731
        totals["orgs"] += get("new_orgs", "new_orgs")
        totals["users"] += get("new_users", "new_users")
        totals["memberships"] += get("new_memberships", "new_memberships")
        calls, seconds = get("calls", "calls"), get("calls", "call_seconds")
        rows.append({
            "month": str(m),
            "orgs_total": totals["orgs"], "orgs_new": get("new_orgs", "new_orgs"),
            "orgs_with_activity": get("active", "orgs_with_activity"),
            "users_total": totals["users"], "users_new": get("new_users", "new_users"),
            "memberships_total": totals["memberships"], "memberships_new": get("new_memberships", "new_memberships"),
            "calls": calls, "call_minutes": round(seconds / 60, 1),
            "avg_call_seconds": round(seconds / calls, 1) if calls else None,
            "calling_orgs": get("calls", "calling_orgs"),
            "sms_in": get("sms", "sms_in"), "sms_out": get("sms", "sms_out"),
            "revenue_paid": float(get("revenue", "revenue_paid")), "paid_records": get("revenue", "paid_records"),
            "refunded": float(get("revenue", "refunded")),
        })
    for previous, row in zip(rows, rows[1:]):
        row["revenue_change"] = _change(previous["revenue_paid"], row["revenue_paid"])
        row["calls_change"] = _change(previous["calls"], row["calls"])
    if rows:
        rows[0]["revenue_change"] = rows[0]["calls_change"] = None
    return rows


def subscriptions(session: Session, month: Month) -> dict[str, Any]:
    """Organisations existing at the month's end, by current subscription status, and how many have members."""
    return session.fetch_one(CURRENT_SQL, {"end": month.end}) or {}


def organizations(session: Session, month: Month) -> list[dict[str, Any]]:
    """Per organisation existing at the month's end: its revenue, calls, minutes and SMS in the month,
    the biggest payers first."""
    return session.fetch(ORGANIZATIONS_SQL, {"start": month.start, "end": month.end})


def summary_finding(row: dict[str, Any]) -> Finding:
    """The report's one finding (``info``): the month's headline figures, for the run's summary."""
    change = row.get("revenue_change")
    trend = "" if change is None else f" ({change:+.1%} on the month before)"
    return Finding(
        "business_report", Severity.INFO, "Monthly business figures", f"month:{row['month']}",
        value=row["revenue_paid"],
        detail=f"{row['orgs_total']} organizations ({row['orgs_new']} new, {row['orgs_with_activity']} with activity), "
               f"{row['users_total']} users, {row['calls']} calls ({row['call_minutes']} min), "
               f"{row['sms_in']} SMS in / {row['sms_out']} out, revenue paid {row['revenue_paid']:,.2f}{trend}",
    )


def _change(before: float, after: float) -> float | None:
    """Relative change, ``None`` when there was nothing before."""
    return round((after - before) / before, 4) if before else None
