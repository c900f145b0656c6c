"""Deterministic data generator for the VictorySync schema.

Every table is filled by one ``insert ... select ... from generate_series(...)``
statement that runs inside the server. Nothing is random: ids are
``md5('<kind>:' || n)::uuid`` and every other "random" value is taken from the
bits of an md5 of the row number, so the same *scale* and *anchor* always give
the same rows, on any PostgreSQL version. Timestamps are ``anchor - offset``
with offsets spread over the two years before the anchor, skewed towards the
recent past, so the guide's archive thresholds (calls older than 1 year, SMS
older than 6 months) have rows on both sides.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Optional

import psycopg
from psycopg import sql

from .schema import ensure_autocommit

#: ``progress(step, rows, seconds)``: called after each table is loaded (step =
#: table name, rows inserted), then for "constraints" and "indexes" (rows = how
#: many were built) and "analyze"; ``seed`` adds "faults" and "settle".
Progress = Callable[[str, int, float], None]

TWO_YEARS_SECONDS = 730 * 86400


@dataclass(frozen=True)
class Sizes:
    """Row targets for one scale. Rows grow linearly with the scale."""

    orgs: int
    users: int
    phones: int
    assigned_phones: int
    calls: int
    sms: int
    billing: int
    archives: int
    metrics: int

    @classmethod
    def for_scale(cls, scale: float) -> "Sizes":
        if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 0):
            raise ValueError(f"scale must be a positive number, not {scale!r}")
        orgs = max(3, round(20 * scale))
        users = max(10, round(300 * scale))
        phones = max(3 * orgs, round(600 * scale))
        return cls(
            orgs=orgs,
            users=users,
            phones=phones,
            assigned_phones=int(phones * 0.85),
            calls=round(50_000 * scale),
            sms=round(50_000 * scale),
            billing=round(6_000 * scale),
            archives=round(2_000 * scale),
            metrics=round(40_000 * scale),
        )


def default_anchor() -> datetime:
    """The start of the current UTC day."""
    return datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)


def normalize_anchor(anchor: Optional[datetime]) -> datetime:
    if anchor is None:
        return default_anchor()
    if not isinstance(anchor, datetime):
        raise TypeError(f"anchor must be a datetime, not {type(anchor).__name__}")
    if anchor.tzinfo is None:  # naive: taken as UTC
        anchor = anchor.replace(tzinfo=timezone.utc)
    return anchor


def _u(b: str, n: int) -> str:
    """SQL for a float8 uniform in [0, 1) from bytes 3n..3n+2 of the md5 digest
    *b* (a bytea, ``decode(md5(...), 'hex')``); n in 0..4."""
    assert 0 <= n <= 4
    return (
        f"((get_byte({b}, {3 * n}) * 65536 + get_byte({b}, {3 * n + 1}) * 256 + get_byte({b}, {3 * n + 2}))"
        " / 16777216.0::float8)"
    )


def _skewed_org(u: str) -> str:
    """Org number 1..orgs, the first orgs much busier than the last."""
    return f"(1 + floor(%(orgs)s::int * {u} * {u})::int)"


def _ago(u: str) -> str:
    """anchor minus 1 s .. 2 years, more rows in the recent past."""
    return f"(%(anchor)s::timestamptz - make_interval(secs => 1 + floor({TWO_YEARS_SECONDS} * power({u}, 1.5))))"


def phone_number_sql(j: str) -> str:
    """E.164 number of phone j (unique: the last 7 digits are j)."""
    return (
        "('+1' || (array['212','310','415','512','617','702','805','917'])[1 + " + j + " %% 8]"
        " || lpad(" + j + "::text, 7, '0'))"
    )


def _phone_of_org(k: str, u: str) -> str:
    """A phone number j assigned to org k (phones j <= assigned are assigned to org (j-1) % orgs + 1)."""
    return f"({k} + %(orgs)s::int * floor({u} * ((%(pa)s::int - {k}) / %(orgs)s::int + 1))::int)"


FIRST_NAMES = ("James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda",
               "David", "Elizabeth", "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica",
               "Thomas", "Sarah", "Carlos", "Aisha")
LAST_NAMES = ("Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis",
              "Rodriguez", "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson",
              "Thomas", "Taylor", "Moore", "Jackson", "Nguyen")
ORG_WORDS_A = ("Acme", "Blue", "Summit", "Harbor", "Pioneer", "Bright", "Evergreen", "Atlas",
               "Crescent", "Redwood", "Silver", "Northwind", "Keystone", "Lakeside", "Union", "Vista")
ORG_WORDS_B = ("Dental", "Realty", "Logistics", "Plumbing", "Insurance", "Legal", "Clinic",
               "Motors", "Roofing", "Solar", "Travel", "Fitness", "Catering", "Auto Glass", "HVAC",
               "Pet Care")


def _arr(values: tuple[str, ...]) -> str:
    return "(array[" + ",".join("'" + v.replace("'", "''") + "'" for v in values) + "])"


ORGS_SQL = f"""
insert into public.organizations
  (id, name, slug, subscription_status, plan, created_by, created_at, updated_at)
select md5('org:' || k)::uuid, name,
       lower(regexp_replace(name, '[^A-Za-z0-9]+', '-', 'g')) || '-' || k,
       case when us < 0.80 then 'active' when us < 0.90 then 'trialing'
            when us < 0.96 then 'past_due' else 'canceled' end,
       case when up < 0.55 then 'starter' when up < 0.88 then 'growth' else 'enterprise' end,
       md5('user:' || k)::uuid,
       created_at,
       created_at + make_interval(days => floor(uu * 300)::int)
from (
  select k,
         {_arr(ORG_WORDS_A)}[1 + (k - 1) %% 16] || ' ' || {_arr(ORG_WORDS_B)}[1 + (k * 7 + (k - 1) / 16) %% 16]
           || case when k > 16 then ' ' || (array['Inc','LLC','Group','Co','Partners'])[1 + k %% 5] else '' end
           as name,
         {_u('h', 0)} as us, {_u('h', 1)} as up, {_u('h', 2)} as uu,
         %(anchor)s::timestamptz - make_interval(days => 760 + floor({_u('h', 3)} * 365)::int) as created_at
  from (select k, decode(md5('org:attr:' || k), 'hex') as h from generate_series(1, %(orgs)s::int) k offset 0) s
) o
"""

_USERS_SRC = f"""
select i, md5('user:' || i)::uuid as id,
       first || ' ' || last as full_name,
       lower(first || '.' || last) || i || '@' ||
         (array['gmail.com','outlook.com','yahoo.com','icloud.com','proton.me'])[1 + i %% 5] as email,
       %(anchor)s::timestamptz - make_interval(days => 740, secs => floor(ut * 20 * 86400)) as created_at
from (
  select i,
         {_arr(FIRST_NAMES)}[1 + floor({_u('h', 0)} * 20)::int] as first,
         {_arr(LAST_NAMES)}[1 + floor({_u('h', 1)} * 20)::int] as last,
         {_u('h', 2)} as ut
  from (select i, decode(md5('user:attr:' || i), 'hex') as h from generate_series(1, %(users)s::int) i offset 0) s
) u
"""

USERS_SQL = f"""
insert into auth.users
  (id, email, encrypted_password, created_at, updated_at, raw_app_meta_data, raw_user_meta_data, role)
select id, email,
       '$2a$10$' || substr(md5('pw:' || i) || md5('salt:' || i), 1, 53),
       created_at, created_at,
       '{{"provider": "email", "providers": ["email"]}}'::jsonb,
       jsonb_build_object('full_name', full_name),
       'authenticated'
from ({_USERS_SRC}) u
"""

PROFILES_SQL = f"""
insert into public.profiles (id, email, full_name, global_role, created_at)
select id, email, full_name,
       case when i <= 2 then 'platform_admin' else 'user' end,
       created_at
from ({_USERS_SRC}) u
"""

# Each user belongs to org (i-1) % orgs + 1 (users 1..orgs own their org);
# about a fifth of the others also belong to a second org.
ORG_USERS_SQL = f"""
insert into public.org_users (id, org_id, user_id, role, created_at)
select md5('org_user:' || i || ':' || m)::uuid, md5('org:' || k)::uuid, md5('user:' || i)::uuid,
       role,
       %(anchor)s::timestamptz - make_interval(days => 735, secs => floor(ut * 86400))
from (
  select i, 1 as m, (i - 1) %% %(orgs)s::int + 1 as k,
         case when i <= %(orgs)s::int then 'owner' when ur < 0.15 then 'admin'
              when ur < 0.85 then 'member' else 'viewer' end as role,
         ut
  from (select i, {_u('h', 0)} as ur, {_u('h', 1)} as ut, {_u('h', 2)} as u2, {_u('h', 3)} as uo
        from (select i, decode(md5('org_user:attr:' || i), 'hex') as h
              from generate_series(1, %(users)s::int) i offset 0) s0 offset 0) s
  union all
  select i, 2,
         ((i - 1) %% %(orgs)s::int + 1 + floor(uo * (%(orgs)s::int - 1))::int) %% %(orgs)s::int + 1,
         case when ur < 0.3 then 'admin' else 'viewer' end,
         ut
  from (select i, {_u('h', 0)} as ur, {_u('h', 1)} as ut, {_u('h', 2)} as u2, {_u('h', 3)} as uo
        from (select i, decode(md5('org_user:attr:' || i), 'hex') as h
              from generate_series(1, %(users)s::int) i offset 0) s0 offset 0) s
  where i > %(orgs)s::int and u2 < 0.2
) m
"""

PHONES_SQL = f"""
insert into public.phone_numbers (id, org_id, number, label, assigned_to_org, created_at)
select md5('phone:' || j)::uuid,
       case when j <= %(pa)s::int then md5('org:' || ((j - 1) %% %(orgs)s::int + 1))::uuid end,
       {phone_number_sql('j')},
       case when j <= %(pa)s::int then
         (array['Main line','Support','Sales','After hours','Billing','Marketing'])[1 + floor(ul * 6)::int] end,
       j <= %(pa)s::int,
       %(anchor)s::timestamptz - make_interval(
         days => case when j <= %(pa)s::int then 731 + floor(ut * 29)::int else floor(ut * 300)::int end)
from (select j, {_u('h', 0)} as ul, {_u('h', 1)} as ut
      from (select j, decode(md5('phone:attr:' || j), 'hex') as h
            from generate_series(1, %(phones)s::int) j offset 0) s0 offset 0) s
"""

# Attributes of call g.
_CALLS_SRC = f"""
select g, k, {_phone_of_org('k', 'uj')} as j, direction, status,
       case status
         when 'completed' then least(3600, 5 + floor(-ln(1 - ul) * 170)::int)
         when 'voicemail' then 10 + floor(ul * 110)::int
         else 0 end as duration,
       created_at, ext_number
from (
  select g, {_skewed_org('uk')} as k, uj, ul,
         case when ud < 0.55 then 'inbound' else 'outbound' end as direction,
         case when us < 0.70 then 'completed' when us < 0.80 then 'missed'
              when us < 0.88 then 'no-answer' when us < 0.94 then 'voicemail'
              when us < 0.97 then 'busy' else 'failed' end as status,
         {_ago('ut')} as created_at,
         '+1' || (200 + floor(ua * 800)::int) || lpad(floor(un * 10000000)::int::text, 7, '0') as ext_number
  from (
    select g, {_u('h1', 0)} as uk, {_u('h1', 1)} as uj, {_u('h1', 2)} as ud, {_u('h1', 3)} as us,
              {_u('h1', 4)} as ul, {_u('h2', 0)} as ut, {_u('h2', 1)} as ua, {_u('h2', 2)} as un
    from (select g, decode(md5('call:a:' || g), 'hex') as h1, decode(md5('call:b:' || g), 'hex') as h2
          from generate_series(1, %(calls)s::int) g offset 0) s0
    offset 0
  ) s1
  offset 0
) c
"""

CALLS_SQL = f"""
insert into public.calls
  (id, org_id, phone_number_id, direction, from_number, to_number, status, duration, created_at, ended_at)
select md5('call:' || g)::uuid, md5('org:' || k)::uuid, md5('phone:' || j)::uuid, direction,
       case when direction = 'inbound' then ext_number else {phone_number_sql('j')} end,
       case when direction = 'inbound' then {phone_number_sql('j')} else ext_number end,
       status, duration, created_at, created_at + make_interval(secs => duration)
from ({_CALLS_SRC}) c
"""

# About 2 in 7 completed calls were recorded. Read from the loaded calls (a
# sequential scan, in insertion order) rather than regenerating every call.
RECORDINGS_SQL = f"""
insert into public.recordings (id, call_id, org_id, url, duration, created_at)
select md5('recording:' || c.id)::uuid, c.id, c.org_id,
       'https://storage.victorysync.io/recordings/' || c.org_id || '/' || c.id || '.mp3',
       c.duration, c.created_at + make_interval(secs => c.duration + 2)
from public.calls c
where c.status = 'completed' and {_u("decode(md5('recorded:' || c.id), 'hex')", 0)} < 0.2857
"""

_SMS_OUT = ("Your appointment is confirmed for tomorrow at 10am. Reply C to cancel.",
            "Reminder: your invoice is due in 3 days.",
            "Thanks for calling! Reply STOP to opt out.",
            "Your verification code is 482913.",
            "Sorry we missed your call. How can we help?",
            "Your technician is on the way and will arrive in about 20 minutes.")
_SMS_IN = ("Yes, confirmed.", "Can you call me back?", "STOP", "What are your opening hours?",
           "Thanks!", "Running 10 minutes late, sorry.")

SMS_SQL = f"""
insert into public.sms_messages
  (id, org_id, phone_number_id, direction, from_number, to_number, body, status, segments, created_at)
select md5('sms:' || g)::uuid, md5('org:' || k)::uuid, md5('phone:' || j)::uuid, direction,
       case when direction = 'inbound' then ext_number else {phone_number_sql('j')} end,
       case when direction = 'inbound' then {phone_number_sql('j')} else ext_number end,
       case when direction = 'inbound' then {_arr(_SMS_IN)}[1 + floor(ub * 6)::int]
            else {_arr(_SMS_OUT)}[1 + floor(ub * 6)::int] end,
       case when direction = 'inbound' then 'received'
            when us < 0.88 then 'delivered' when us < 0.96 then 'sent' else 'failed' end,
       1 + floor(ug * ug * 3)::int,
       created_at
from (
  select g, k, {_phone_of_org('k', 'uj')} as j, direction, ub, us, ug, created_at, ext_number
  from (
    select g, {_skewed_org('uk')} as k, uj, ub, us, ug,
           case when ud < 0.45 then 'inbound' else 'outbound' end as direction,
           {_ago('ut')} as created_at,
           '+1' || (200 + floor(ua * 800)::int) || lpad(floor(un * 10000000)::int::text, 7, '0') as ext_number
    from (
      select g, {_u('h1', 0)} as uk, {_u('h1', 1)} as uj, {_u('h1', 2)} as ud, {_u('h1', 3)} as us,
                {_u('h1', 4)} as ub, {_u('h2', 0)} as ut, {_u('h2', 1)} as ua, {_u('h2', 2)} as un,
                {_u('h2', 3)} as ug
      from (select g, decode(md5('sms:a:' || g), 'hex') as h1, decode(md5('sms:b:' || g), 'hex') as h2
            from generate_series(1, %(sms)s::int) g offset 0) s0
      offset 0
    ) s1
    offset 0
  ) s2
  offset 0
) m
"""

BILLING_SQL = f"""
insert into public.billing_records
  (id, org_id, description, amount, currency, status, created_at, updated_at)
select md5('billing:' || i)::uuid, md5('org:' || k)::uuid,
       (array['Monthly subscription','Call minutes overage','SMS bundle','Phone number rental',
              'Recording storage'])[1 + floor(ud * 5)::int],
       round((9.99 + ua * ua * 990)::numeric, 2), 'usd',
       case when us < 0.85 then 'paid' when us < 0.92 then 'pending'
            when us < 0.97 then 'failed' else 'refunded' end,
       created_at, created_at + make_interval(days => floor(uu * 5)::int)
from (
  select i, {_skewed_org('uk')} as k, ud, ua, us, uu, {_ago('ut')} as created_at
  from (select i, {_u('h', 0)} as uk, {_u('h', 1)} as ud, {_u('h', 2)} as ua, {_u('h', 3)} as us,
               {_u('h', 4)} as uu, {_u('h2', 0)} as ut
        from (select i, decode(md5('billing:a:' || i), 'hex') as h, decode(md5('billing:b:' || i), 'hex') as h2
              from generate_series(1, %(billing)s::int) i offset 0) s0 offset 0) s
) b
"""

# One invoice per org per month for the 24 months up to the anchor's month.
INVOICES_SQL = f"""
insert into public.invoices (id, org_id, number, amount, status, issued_at, due_at, created_at)
select md5('invoice:' || i)::uuid, md5('org:' || k)::uuid, 'INV-' || lpad(i::text, 6, '0'),
       round((49 + ua * ua * 2000)::numeric, 2),
       case when m = 0 then 'open' when us < 0.92 then 'paid' when us < 0.97 then 'void'
            else 'uncollectible' end,
       issued_at, issued_at + interval '30 days', issued_at
from (
  select i, (i - 1) %% %(orgs)s::int + 1 as k, (i - 1) / %(orgs)s::int as m,
         {_u('h', 0)} as ua, {_u('h', 1)} as us,
         date_trunc('month', %(anchor)s::timestamptz) - make_interval(months => (i - 1) / %(orgs)s::int)
           as issued_at
  from (select i, decode(md5('invoice:attr:' || i), 'hex') as h
        from generate_series(1, %(orgs)s::int * 24) i offset 0) s
) v
"""

ARCHIVES_SQL = f"""
insert into public.archives (id, org_id, kind, payload, created_at)
select md5('archive:' || i)::uuid, md5('org:' || k)::uuid, kind,
       jsonb_build_object('rows', floor(ur * 50000)::int, 'period', to_char(created_at, 'YYYY-MM'),
                          'format', 'csv'),
       created_at
from (
  select i, {_skewed_org('uk')} as k, ur,
         (array['calls','sms','billing','export'])[1 + floor(ui * 4)::int] as kind,
         {_ago('ut')} as created_at
  from (select i, {_u('h', 0)} as uk, {_u('h', 1)} as ur, {_u('h', 2)} as ui, {_u('h', 3)} as ut
        from (select i, decode(md5('archive:attr:' || i), 'hex') as h
              from generate_series(1, %(archives)s::int) i offset 0) s0 offset 0) s
) a
"""

# Four metrics sampled together, the samples spread evenly over two years.
METRICS_SQL = f"""
insert into public.db_metrics (id, metric_name, metric_value, recorded_at)
select g, name,
       case name
         when 'connections' then 5 + floor(u * 55)
         when 'cache_hit_ratio' then round((0.95 + u * 0.049)::numeric, 4)::float8
         when 'db_size_mb' then round((2048 + 6000 * (1 - t::float8 / samples) + u * 20)::numeric, 1)::float8
         else round((20 + u * 300)::numeric, 2)::float8 end,
       %(anchor)s::timestamptz - make_interval(secs => (t + 1) * ({TWO_YEARS_SECONDS} / samples))
from (
  select g, (g - 1) / 4 as t, greatest(1, ceil(%(metrics)s::int / 4.0)::int) as samples,
         (array['connections','cache_hit_ratio','db_size_mb','tps'])[1 + (g - 1) %% 4] as name,
         {_u("decode(md5('metric:' || g), 'hex')", 0)} as u
  from generate_series(1, %(metrics)s::int) g
) s
"""

#: (table, statement) in foreign-key order.
STEPS: tuple[tuple[str, str], ...] = (
    ("organizations", ORGS_SQL),
    ("auth.users", USERS_SQL),
    ("profiles", PROFILES_SQL),
    ("org_users", ORG_USERS_SQL),
    ("phone_numbers", PHONES_SQL),
    ("calls", CALLS_SQL),
    ("recordings", RECORDINGS_SQL),
    ("billing_records", BILLING_SQL),
    ("invoices", INVOICES_SQL),
    ("sms_messages", SMS_SQL),
    ("archives", ARCHIVES_SQL),
    ("db_metrics", METRICS_SQL),
)

#: Tables that start empty (filled by the archiving runbooks).
EMPTY_TABLES: tuple[str, ...] = ("call_archives", "sms_archives")


def _drop_constraints(conn: psycopg.Connection, tables: list[str]) -> list[sql.Composable]:
    """Drop the primary key, unique and foreign key constraints on (or pointing
    at) *tables*; return the statements that re-add them, keys first.

    Re-adding a foreign key makes PostgreSQL validate every row, so the
    generated data is checked for consistency at the end of the load."""
    rows = conn.execute(
        """
        select n.nspname, r.relname, c.conname, c.contype, pg_get_constraintdef(c.oid)
        from pg_constraint c
        join pg_class r on r.oid = c.conrelid
        join pg_namespace n on n.oid = r.relnamespace
        where c.contype in ('p', 'u', 'f')
          and (c.conrelid = any(%s::regclass[]) or c.confrelid = any(%s::regclass[]))
        order by c.contype = 'f' desc, c.oid
        """,
        (tables, tables),
    ).fetchall()
    readd = []
    for nsp, rel, name, _, definition in rows:
        table, constraint = sql.Identifier(nsp, rel), sql.Identifier(name)
        conn.execute(sql.SQL("alter table {} drop constraint {}").format(table, constraint))
        readd.append(
            sql.SQL("alter table {} add constraint {} ").format(table, constraint) + sql.SQL(definition)
        )
    return readd[::-1]


def _drop_secondary_indexes(conn: psycopg.Connection, tables: list[str]) -> list[str]:
    """Drop the indexes of *tables* that back no constraint; return their definitions."""
    rows = conn.execute(
        """
        select i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
        from pg_index i
        where i.indrelid = any(%s::regclass[])
          and not exists (select 1 from pg_constraint c where c.conindid = i.indexrelid)
        order by i.indexrelid
        """,
        (tables,),
    ).fetchall()
    for name, _ in rows:
        conn.execute(sql.SQL("drop index {}").format(sql.Identifier(*name.split(".")) if "." in name
                                                     else sql.Identifier("public", name)))
    return [definition for _, definition in rows]


def load_data(
    conn: psycopg.Connection,
    *,
    scale: float = 1.0,
    anchor: Optional[datetime] = None,
    progress: Optional[Progress] = None,
) -> dict[str, int]:
    """Fill the (empty) app tables and ``auth.users``; return rows per table.

    *conn* is a superuser connection (autocommit) to a database where
    :func:`install_schema` ran. *scale* 1.0 gives ~50k calls and ~50k SMS;
    rows grow linearly (scale 20 gives 1M of each). *anchor* (default: the
    start of the current UTC day) is the instant the data ends at.
    """
    ensure_autocommit(conn)
    sizes = Sizes.for_scale(scale)
    params = {
        "anchor": normalize_anchor(anchor),
        "orgs": sizes.orgs,
        "users": sizes.users,
        "phones": sizes.phones,
        "pa": sizes.assigned_phones,
        "calls": sizes.calls,
        "sms": sizes.sms,
        "billing": sizes.billing,
        "archives": sizes.archives,
        "metrics": sizes.metrics,
    }
    counts: dict[str, int] = {}
    tables = [t if "." in t else "public." + t for t, _ in STEPS]
    with conn.transaction():
        # Dates are cut in UTC whatever the session's time zone, so the rows
        # do not depend on who seeds.
        conn.execute("set local timezone = 'UTC'")
        conn.execute("set local synchronous_commit = off")
        # Like pg_restore: load the rows first, then build the indexes and add
        # (and so validate) the keys and foreign keys, rather than maintaining
        # them row by row (about three times faster at a million rows).
        conn.execute("set local maintenance_work_mem = '256MB'")
        deferred = _drop_secondary_indexes(conn, tables)
        deferred_constraints = _drop_constraints(conn, tables)
        for table, statement in STEPS:
            started = time.monotonic()
            cur = conn.execute(statement, params)
            counts[table] = cur.rowcount
            if progress is not None:
                progress(table, cur.rowcount, time.monotonic() - started)
        started = time.monotonic()
        for statement in deferred_constraints:
            conn.execute(statement)
        if progress is not None:
            progress("constraints", len(deferred_constraints), time.monotonic() - started)
        started = time.monotonic()
        for definition in deferred:
            conn.execute(definition)
        if progress is not None:
            progress("indexes", len(deferred), time.monotonic() - started)
        conn.execute(
            "select setval('public.db_metrics_id_seq', greatest(1, coalesce(max(id), 1)), max(id) is not null)"
            " from public.db_metrics"
        )
    for table in EMPTY_TABLES:
        counts[table] = 0
    started = time.monotonic()
    conn.execute("analyze")
    if progress is not None:
        progress("analyze", sum(counts.values()), time.monotonic() - started)
    return counts
