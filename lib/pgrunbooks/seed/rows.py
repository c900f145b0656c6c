"""The statement that generates each table's rows: one ``insert ... select ... from
generate_series(...)`` per table, composed with ``psycopg.sql``.

Nothing is random: ids are ``md5('<kind>:' || n)::uuid`` and every other "random" value is a
float in [0, 1) taken from the bits of an md5 of the row number (:func:`uniform`). The
statements bind ``%(anchor)s`` and the row targets of :class:`~pgrunbooks.seed.data.Sizes`
(``%(orgs)s``, ``%(calls)s``...); the fragments they share are ``{placeholders}``.
"""

from __future__ import annotations

from psycopg import sql

TWO_YEARS_SECONDS = 730 * 86400

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
SMS_OUT = ("Your appointment is confirmed for tomorrow at 10am. Reply C to cancel.",
           "Reminder: your invoice is due in 3 days.",
           "Thanks for calling! Reply STOP to opt out.",
           "Your verification code is 482913.",
           "Sorry we missed your call. How can we help?",
           "Your technician is on the way and will arrive in about 20 minutes.")
SMS_IN = ("Yes, confirmed.", "Can you call me back?", "STOP", "What are your opening hours?",
          "Thanks!", "Running 10 minutes late, sorry.")


def uniform(digest: sql.Composable, n: int) -> sql.Composed:
    """A float8 uniform in [0, 1) from bytes 3n..3n+2 of *digest* (a bytea,
    ``decode(md5(...), 'hex')``); n in 0..4."""
    if not 0 <= n <= 4:
        raise ValueError(f"an md5 digest has five 3-byte slots, not slot {n}")
    return sql.SQL(
        "((get_byte({b}, {i}) * 65536 + get_byte({b}, {j}) * 256 + get_byte({b}, {k})) / 16777216.0::float8)"
    ).format(b=digest, i=sql.Literal(3 * n), j=sql.Literal(3 * n + 1), k=sql.Literal(3 * n + 2))


def skewed_org(u: sql.Composable) -> sql.Composed:
    """Org number 1..orgs, the first orgs much busier than the last."""
    return sql.SQL("(1 + floor(%(orgs)s::int * {u} * {u})::int)").format(u=u)


def ago(u: sql.Composable) -> sql.Composed:
    """anchor minus 1 s .. 2 years, more rows in the recent past."""
    return sql.SQL("(%(anchor)s::timestamptz - make_interval(secs => 1 + floor({s} * power({u}, 1.5))))").format(
        s=sql.Literal(TWO_YEARS_SECONDS), u=u
    )


def phone_number(j: sql.Composable) -> sql.Composed:
    """E.164 number of phone j (unique: the last 7 digits are j)."""
    return sql.SQL(
        "('+1' || (array['212','310','415','512','617','702','805','917'])[1 + {j} %% 8] || lpad({j}::text, 7, '0'))"
    ).format(j=j)


def phone_of_org(k: sql.Composable, u: sql.Composable) -> sql.Composed:
    """A phone number j assigned to org k (phones j <= assigned are assigned to org (j-1) % orgs + 1)."""
    return sql.SQL("({k} + %(orgs)s::int * floor({u} * ((%(pa)s::int - {k}) / %(orgs)s::int + 1))::int)").format(
        k=k, u=u
    )


def text_array(values: tuple[str, ...]) -> sql.Composed:
    """``(array['a','b'])``: index it with ``[1 + ...]``."""
    return sql.SQL("(array[{}])").format(sql.SQL(",").join(sql.Literal(v) for v in values))


def _uniforms(column: str, slots: int) -> dict[str, sql.Composed]:
    """``{u_<column>_<n>}``: :func:`uniform` of the digest column *column*, slot n."""
    return {f"u_{column}_{n}": uniform(sql.Identifier(column), n) for n in range(slots)}


#: the fragments the statements below share, by placeholder name
FRAGMENTS: dict[str, sql.Composable] = {
    **_uniforms("h", 5), **_uniforms("h1", 5), **_uniforms("h2", 4),
    "org_of_uk": skewed_org(sql.Identifier("uk")),
    "ago_ut": ago(sql.Identifier("ut")),
    "phone_j": phone_number(sql.Identifier("j")),
    "phone_of_org_k": phone_of_org(sql.Identifier("k"), sql.Identifier("uj")),
    "two_years": sql.Literal(TWO_YEARS_SECONDS),
    "org_words_a": text_array(ORG_WORDS_A),
    "org_words_b": text_array(ORG_WORDS_B),
    "first_names": text_array(FIRST_NAMES),
    "last_names": text_array(LAST_NAMES),
    "sms_in": text_array(SMS_IN),
    "sms_out": text_array(SMS_OUT),
    "recorded": uniform(sql.SQL("decode(md5('recorded:' || c.id), 'hex')"), 0),
    "metric_u": uniform(sql.SQL("decode(md5('metric:' || g), 'hex')"), 0),
}


def compose(text: str) -> sql.Composed:
    """*text* with its ``{placeholders}`` filled from :data:`FRAGMENTS`."""
    return sql.SQL(text).format(**FRAGMENTS)


ORGS_SQL = compose("""
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
         {org_words_a}[1 + (k - 1) %% 16] || ' ' || {org_words_b}[1 + (k * 7 + (k - 1) / 16) %% 16]
           || case when k > 16 then ' ' || (array['Inc','LLC','Group','Co','Partners'])[1 + k %% 5] else '' end
           as name,
         {u_h_0} as us, {u_h_1} as up, {u_h_2} as uu,
         %(anchor)s::timestamptz - make_interval(days => 760 + floor({u_h_3} * 365)::int) as created_at
  from (select k, decode(md5('org:attr:' || k), 'hex') as h from generate_series(1, %(orgs)s::int) k offset 0) s
) o
""")

FRAGMENTS["users_src"] = compose("""
select i, md5('user:' || i)::uuid as id,
       first || ' ' || last as full_name,
       lower(first || '.' || last) || i || '@' ||
         (array['gmail.com','outlook.com','yahoo.com','icloud.com','proton.me'])[1 + i %% 5] as email,
       %(anchor)s::timestamptz - make_interval(days => 740, secs => floor(ut * 20 * 86400)) as created_at
from (
  select i,
         {first_names}[1 + floor({u_h_0} * 20)::int] as first,
         {last_names}[1 + floor({u_h_1} * 20)::int] as last,
         {u_h_2} as ut
  from (select i, decode(md5('user:attr:' || i), 'hex') as h from generate_series(1, %(users)s::int) i offset 0) s
) u
""")

USERS_SQL = compose("""
insert into auth.users
  (id, email, encrypted_password, created_at, updated_at, raw_app_meta_data, raw_user_meta_data, role)
select id, email,
       '$2a$10$' || substr(md5('pw:' || i) || md5('salt:' || i), 1, 53),
       created_at, created_at,
       '{{"provider": "email", "providers": ["email"]}}'::jsonb,
       jsonb_build_object('full_name', full_name),
       'authenticated'
from ({users_src}) u
""")

PROFILES_SQL = compose("""
insert into public.profiles (id, email, full_name, global_role, created_at)
select id, email, full_name,
       case when i <= 2 then 'platform_admin' else 'user' end,
       created_at
from ({users_src}) u
""")

# Each user belongs to org (i-1) % orgs + 1 (users 1..orgs own their org);
# about a fifth of the others also belong to a second org.
ORG_USERS_SQL = compose("""
insert into public.org_users (id, org_id, user_id, role, created_at)
select md5('org_user:' || i || ':' || m)::uuid, md5('org:' || k)::uuid, md5('user:' || i)::uuid,
       role,
       %(anchor)s::timestamptz - make_interval(days => 735, secs => floor(ut * 86400))
from (
  select i, 1 as m, (i - 1) %% %(orgs)s::int + 1 as k,
         case when i <= %(orgs)s::int then 'owner' when ur < 0.15 then 'admin'
              when ur < 0.85 then 'member' else 'viewer' end as role,
         ut
  from (select i, {u_h_0} as ur, {u_h_1} as ut, {u_h_2} as u2, {u_h_3} as uo
        from (select i, decode(md5('org_user:attr:' || i), 'hex') as h
              from generate_series(1, %(users)s::int) i offset 0) s0 offset 0) s
  union all
  select i, 2,
         ((i - 1) %% %(orgs)s::int + 1 + floor(uo * (%(orgs)s::int - 1))::int) %% %(orgs)s::int + 1,
         case when ur < 0.3 then 'admin' else 'viewer' end,
         ut
  from (select i, {u_h_0} as ur, {u_h_1} as ut, {u_h_2} as u2, {u_h_3} as uo
        from (select i, decode(md5('org_user:attr:' || i), 'hex') as h
              from generate_series(1, %(users)s::int) i offset 0) s0 offset 0) s
  where i > %(orgs)s::int and u2 < 0.2
) m
""")

PHONES_SQL = compose("""
insert into public.phone_numbers (id, org_id, number, label, assigned_to_org, created_at)
select md5('phone:' || j)::uuid,
       case when j <= %(pa)s::int then md5('org:' || ((j - 1) %% %(orgs)s::int + 1))::uuid end,
       {phone_j},
       case when j <= %(pa)s::int then
         (array['Main line','Support','Sales','After hours','Billing','Marketing'])[1 + floor(ul * 6)::int] end,
       j <= %(pa)s::int,
       %(anchor)s::timestamptz - make_interval(
         days => case when j <= %(pa)s::int then 731 + floor(ut * 29)::int else floor(ut * 300)::int end)
from (select j, {u_h_0} as ul, {u_h_1} as ut
      from (select j, decode(md5('phone:attr:' || j), 'hex') as h
            from generate_series(1, %(phones)s::int) j offset 0) s0 offset 0) s
""")

# Attributes of call g.
FRAGMENTS["calls_src"] = compose("""
select g, k, {phone_of_org_k} as j, direction, status,
       case status
         when 'completed' then least(3600, 5 + floor(-ln(1 - ul) * 170)::int)
         when 'voicemail' then 10 + floor(ul * 110)::int
         else 0 end as duration,
       created_at, ext_number
from (
  select g, {org_of_uk} as k, uj, ul,
         case when ud < 0.55 then 'inbound' else 'outbound' end as direction,
         case when us < 0.70 then 'completed' when us < 0.80 then 'missed'
              when us < 0.88 then 'no-answer' when us < 0.94 then 'voicemail'
              when us < 0.97 then 'busy' else 'failed' end as status,
         {ago_ut} as created_at,
         '+1' || (200 + floor(ua * 800)::int) || lpad(floor(un * 10000000)::int::text, 7, '0') as ext_number
  from (
    select g, {u_h1_0} as uk, {u_h1_1} as uj, {u_h1_2} as ud, {u_h1_3} as us,
              {u_h1_4} as ul, {u_h2_0} as ut, {u_h2_1} as ua, {u_h2_2} as un
    from (select g, decode(md5('call:a:' || g), 'hex') as h1, decode(md5('call:b:' || g), 'hex') as h2
          from generate_series(1, %(calls)s::int) g offset 0) s0
    offset 0
  ) s1
  offset 0
) c
""")

CALLS_SQL = compose("""
insert into public.calls
  (id, org_id, phone_number_id, direction, from_number, to_number, status, duration, created_at, ended_at)
select md5('call:' || g)::uuid, md5('org:' || k)::uuid, md5('phone:' || j)::uuid, direction,
       case when direction = 'inbound' then ext_number else {phone_j} end,
       case when direction = 'inbound' then {phone_j} else ext_number end,
       status, duration, created_at, created_at + make_interval(secs => duration)
from ({calls_src}) c
""")

# About 2 in 7 completed calls were recorded. Read from the loaded calls (a
# sequential scan, in insertion order) rather than regenerating every call.
RECORDINGS_SQL = compose("""
insert into public.recordings (id, call_id, org_id, url, duration, created_at)
select md5('recording:' || c.id)::uuid, c.id, c.org_id,
       'https://storage.victorysync.io/recordings/' || c.org_id || '/' || c.id || '.mp3',
       c.duration, c.created_at + make_interval(secs => c.duration + 2)
from public.calls c
where c.status = 'completed' and {recorded} < 0.2857
""")

SMS_SQL = compose("""
insert into public.sms_messages
  (id, org_id, phone_number_id, direction, from_number, to_number, body, status, segments, created_at)
select md5('sms:' || g)::uuid, md5('org:' || k)::uuid, md5('phone:' || j)::uuid, direction,
       case when direction = 'inbound' then ext_number else {phone_j} end,
       case when direction = 'inbound' then {phone_j} else ext_number end,
       case when direction = 'inbound' then {sms_in}[1 + floor(ub * 6)::int]
            else {sms_out}[1 + floor(ub * 6)::int] end,
       case when direction = 'inbound' then 'received'
            when us < 0.88 then 'delivered' when us < 0.96 then 'sent' else 'failed' end,
       1 + floor(ug * ug * 3)::int,
       created_at
from (
  select g, k, {phone_of_org_k} as j, direction, ub, us, ug, created_at, ext_number
  from (
    select g, {org_of_uk} as k, uj, ub, us, ug,
           case when ud < 0.45 then 'inbound' else 'outbound' end as direction,
           {ago_ut} as created_at,
           '+1' || (200 + floor(ua * 800)::int) || lpad(floor(un * 10000000)::int::text, 7, '0') as ext_number
    from (
      select g, {u_h1_0} as uk, {u_h1_1} as uj, {u_h1_2} as ud, {u_h1_3} as us,
                {u_h1_4} as ub, {u_h2_0} as ut, {u_h2_1} as ua, {u_h2_2} as un,
                {u_h2_3} as ug
      from (select g, decode(md5('sms:a:' || g), 'hex') as h1, decode(md5('sms:b:' || g), 'hex') as h2
            from generate_series(1, %(sms)s::int) g offset 0) s0
      offset 0
    ) s1
    offset 0
  ) s2
  offset 0
) m
""")

BILLING_SQL = compose("""
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
  select i, {org_of_uk} as k, ud, ua, us, uu, {ago_ut} as created_at
  from (select i, {u_h_0} as uk, {u_h_1} as ud, {u_h_2} as ua, {u_h_3} as us,
               {u_h_4} as uu, {u_h2_0} as ut
        from (select i, decode(md5('billing:a:' || i), 'hex') as h, decode(md5('billing:b:' || i), 'hex') as h2
              from generate_series(1, %(billing)s::int) i offset 0) s0 offset 0) s
) b
""")

# One invoice per org per month for the 24 months up to the anchor's month.
INVOICES_SQL = compose("""
insert into public.invoices (id, org_id, number, amount, status, issued_at, due_at, created_at)
select md5('invoice:' || i)::uuid, md5('org:' || k)::uuid, 'INV-' || lpad(i::text, 6, '0'),
       round((49 + ua * ua * 2000)::numeric, 2),
       case when m = 0 then 'open' when us < 0.92 then 'paid' when us < 0.97 then 'void'
            else 'uncollectible' end,
       issued_at, issued_at + interval '30 days', issued_at
from (
  select i, (i - 1) %% %(orgs)s::int + 1 as k, (i - 1) / %(orgs)s::int as m,
         {u_h_0} as ua, {u_h_1} as us,
         date_trunc('month', %(anchor)s::timestamptz) - make_interval(months => (i - 1) / %(orgs)s::int)
           as issued_at
  from (select i, decode(md5('invoice:attr:' || i), 'hex') as h
        from generate_series(1, %(orgs)s::int * 24) i offset 0) s
) v
""")

ARCHIVES_SQL = compose("""
insert into public.archives (id, org_id, kind, payload, created_at)
select md5('archive:' || i)::uuid, md5('org:' || k)::uuid, kind,
       jsonb_build_object('rows', floor(ur * 50000)::int, 'period', to_char(created_at, 'YYYY-MM'),
                          'format', 'csv'),
       created_at
from (
  select i, {org_of_uk} as k, ur,
         (array['calls','sms','billing','export'])[1 + floor(ui * 4)::int] as kind,
         {ago_ut} as created_at
  from (select i, {u_h_0} as uk, {u_h_1} as ur, {u_h_2} as ui, {u_h_3} as ut
        from (select i, decode(md5('archive:attr:' || i), 'hex') as h
              from generate_series(1, %(archives)s::int) i offset 0) s0 offset 0) s
) a
""")

# Four metrics sampled together, the samples spread evenly over two years. db_size_mb grows
# from about half the seeded size to about the size the seed gives (~10 MB of catalog and
# auth plus ~0.8 MB per 1,000 calls, measured on PostgreSQL 18), so database_growth on a fresh
# sandbox compares with a plausible snapshot (a few % growth, no alarm).
METRICS_SQL = compose("""
insert into public.db_metrics (id, metric_name, metric_value, recorded_at)
select g, name,
       case name
         when 'connections' then 5 + floor(u * 55)
         when 'cache_hit_ratio' then round((0.95 + u * 0.049)::numeric, 4)::float8
         when 'db_size_mb' then round(((10 + %(calls)s::float8 * 0.0008) * (0.55 + 0.45 * (1 - t::float8 / samples))
                                       + u * 0.2)::numeric, 1)::float8
         else round((20 + u * 300)::numeric, 2)::float8 end,
       %(anchor)s::timestamptz - make_interval(secs => (t + 1) * ({two_years} / samples))
from (
  select g, (g - 1) / 4 as t, greatest(1, ceil(%(metrics)s::int / 4.0)::int) as samples,
         (array['connections','cache_hit_ratio','db_size_mb','tps'])[1 + (g - 1) %% 4] as name,
         {metric_u} as u
  from generate_series(1, %(metrics)s::int) g
) s
""")

#: (table, statement) in foreign-key order.
STEPS: tuple[tuple[str, sql.Composed], ...] = (
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
