"""Planted faults: small, named, deterministic changes that the checks must find.

Each :class:`Fault` knows how to plant itself (``apply``), whether it is there
(``present``), the check ids that must report it (``finds``), and, for
cluster-scope faults (which every database of the cluster sees), how to remove
itself (``revert``). ``docs/faults.md`` documents each one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterable, Optional, Union

import psycopg
from psycopg import sql

from .schema import ensure_autocommit


try:
    from pgrunbooks.errors import UsageError as _UsageBase
except ImportError:  # pragma: no cover - the package ships errors.py

    class _UsageBase(Exception):  # type: ignore[no-redef]
        def __init__(self, message: str, *, hint: str | None = None):
            super().__init__(message if not hint else f"{message}\n  hint: {hint}")


class UnknownFault(_UsageBase, ValueError):
    """A fault name that is not in :data:`FAULTS` (a usage error: CLI exit code 3)."""

    def __init__(self, names: Iterable[str], valid: Iterable[str]):
        self.names = tuple(names)
        self.valid = tuple(valid)
        shown = ", ".join(repr(n) for n in self.names)
        super().__init__(
            f"unknown fault{'s' if len(self.names) > 1 else ''} {shown}",
            hint=f"valid faults: {', '.join(self.valid)} (or 'all' / 'none'); see docs/faults.md",
        )


@dataclass(frozen=True)
class Fault:
    name: str
    description: str
    #: check ids that must report this fault
    finds: tuple[str, ...]
    #: "database" (lives in one database) or "cluster" (roles: seen by every database)
    scope: str
    apply: Callable[[psycopg.Connection], None]
    revert: Optional[Callable[[psycopg.Connection], None]]
    present: Callable[[psycopg.Connection], bool]
    #: the objects it plants or changes, qualified (for check authors and tests)
    objects: tuple[str, ...] = ()
    #: other checks that legitimately report it too (not required to)
    also_flagged_by: tuple[str, ...] = field(default_factory=tuple)


# ---------------------------------------------------------------- helpers


def _one(conn: psycopg.Connection, query, params=None):
    row = conn.execute(query, params).fetchone()
    return None if row is None else row[0]


def _exists_rel(conn: psycopg.Connection, name: str) -> bool:
    return _one(conn, "select to_regclass(%s) is not null", (name,))


def data_anchor(conn: psycopg.Connection) -> datetime:
    """The anchor the data was generated with (the day after the newest call),
    so that faults are deterministic too."""
    newest = _one(conn, "select max(created_at) from public.calls")
    if newest is None:
        return datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    newest = newest.astimezone(timezone.utc)
    day = newest.replace(hour=0, minute=0, second=0, microsecond=0)
    return day + timedelta(days=1)


# ---------------------------------------------------------------- orphaned_rows

ORPHAN_FKS = (
    ("public.phone_numbers", "phone_numbers_org_id_fkey"),
    ("public.org_users", "org_users_org_id_fkey"),
    ("public.invoices", "invoices_org_id_fkey"),
    ("public.calls", "calls_org_id_fkey"),
    ("public.sms_messages", "sms_messages_org_id_fkey"),
    ("public.recordings", "recordings_call_id_fkey"),
)

#: (table, column, referenced table) of the rows the orphaned_rows fault plants.
ORPHAN_REFERENCES = (
    ("public.phone_numbers", "org_id", "public.organizations"),
    ("public.org_users", "org_id", "public.organizations"),
    ("public.invoices", "org_id", "public.organizations"),
    ("public.calls", "org_id", "public.organizations"),
    ("public.sms_messages", "org_id", "public.organizations"),
    ("public.recordings", "call_id", "public.calls"),
)

#: orphan rows planted per table
ORPHAN_COUNTS = {
    "phone_numbers": 5, "org_users": 4, "invoices": 6, "calls": 25, "sms_messages": 30, "recordings": 3,
}


def _apply_orphaned_rows(conn: psycopg.Connection) -> None:
    anchor = data_anchor(conn)
    with conn.transaction():
        for table, constraint in ORPHAN_FKS:
            conn.execute(
                sql.SQL("alter table {} drop constraint if exists {}").format(
                    sql.Identifier(*table.split(".")), sql.Identifier(constraint)
                )
            )
        p = {"anchor": anchor}
        # Three organizations were deleted by hand; their phones, members,
        # invoices, calls and messages stayed behind. Deleted org n is
        # md5('deleted-org:' || n), n = 1..3; orphan phone p belongs to deleted
        # org 1 + p % 3.
        conn.execute(
            """
            insert into public.phone_numbers (id, org_id, number, label, assigned_to_org, created_at)
            select md5('orphan-phone:' || p)::uuid, md5('deleted-org:' || (1 + p %% 3))::uuid,
                   '+1999' || lpad(p::text, 7, '0'), 'Main line', true,
                   %(anchor)s::timestamptz - make_interval(days => 500 + p)
            from generate_series(1, 5) p
            """,
            p,
        )
        conn.execute(
            """
            insert into public.org_users (id, org_id, user_id, role, created_at)
            select md5('orphan-org-user:' || n)::uuid, md5('deleted-org:' || (1 + n %% 3))::uuid,
                   md5('user:' || (2 + n))::uuid, 'member',
                   %(anchor)s::timestamptz - make_interval(days => 480 + n)
            from generate_series(1, 4) n
            """,
            p,
        )
        conn.execute(
            """
            insert into public.invoices (id, org_id, number, amount, status, issued_at, due_at, created_at)
            select md5('orphan-invoice:' || n)::uuid, md5('deleted-org:' || (1 + n %% 3))::uuid,
                   'INV-D' || lpad(n::text, 5, '0'), 99.00 + n,
                   case when n <= 4 then 'paid' else 'uncollectible' end,
                   date_trunc('month', %(anchor)s::timestamptz) - make_interval(months => 12 + n),
                   date_trunc('month', %(anchor)s::timestamptz) - make_interval(months => 12 + n)
                     + interval '30 days',
                   date_trunc('month', %(anchor)s::timestamptz) - make_interval(months => 12 + n)
            from generate_series(1, 6) n
            """,
            p,
        )
        conn.execute(
            """
            insert into public.calls
              (id, org_id, phone_number_id, direction, from_number, to_number, status, duration,
               created_at, ended_at)
            select md5('orphan-call:' || n)::uuid, md5('deleted-org:' || (1 + (1 + n %% 5) %% 3))::uuid,
                   md5('orphan-phone:' || (1 + n %% 5))::uuid, 'inbound',
                   '+1555' || lpad(n::text, 7, '0'), '+1999' || lpad((1 + n %% 5)::text, 7, '0'),
                   'completed', 60 + n,
                   %(anchor)s::timestamptz - make_interval(days => 300 + 5 * n),
                   %(anchor)s::timestamptz - make_interval(days => 300 + 5 * n) + make_interval(secs => 60 + n)
            from generate_series(1, 25) n
            """,
            p,
        )
        conn.execute(
            """
            insert into public.sms_messages
              (id, org_id, phone_number_id, direction, from_number, to_number, body, status, segments,
               created_at)
            select md5('orphan-sms:' || n)::uuid, md5('deleted-org:' || (1 + (1 + n %% 5) %% 3))::uuid,
                   md5('orphan-phone:' || (1 + n %% 5))::uuid, 'outbound',
                   '+1999' || lpad((1 + n %% 5)::text, 7, '0'), '+1555' || lpad(n::text, 7, '0'),
                   'Your appointment is confirmed.', 'delivered', 1,
                   %(anchor)s::timestamptz - make_interval(days => 120 + 5 * n)
            from generate_series(1, 30) n
            """,
            p,
        )
        # Recordings whose call row was deleted with the recordings FK gone.
        conn.execute(
            """
            insert into public.recordings (id, call_id, org_id, url, duration, created_at)
            select md5('orphan-recording:' || n)::uuid, md5('deleted-call:' || n)::uuid,
                   md5('org:1')::uuid,
                   'https://storage.victorysync.io/recordings/' || md5('org:1')::uuid || '/'
                     || md5('deleted-call:' || n)::uuid || '.mp3',
                   30 * n, %(anchor)s::timestamptz - make_interval(days => 200 + n)
            from generate_series(1, 3) n
            """,
            p,
        )


def _present_orphaned_rows(conn: psycopg.Connection) -> bool:
    checks = []
    for table, column, ref in ORPHAN_REFERENCES:
        checks.append(
            sql.SQL(
                "exists (select 1 from {t} x where x.{c} is not null"
                " and not exists (select 1 from {r} y where y.id = x.{c}))"
            ).format(
                t=sql.Identifier(*table.split(".")),
                c=sql.Identifier(column),
                r=sql.Identifier(*ref.split(".")),
            )
        )
    return bool(_one(conn, sql.SQL("select ") + sql.SQL(" or ").join(checks)))


# ---------------------------------------------------------------- RLS faults


def _apply_rls_disabled(conn: psycopg.Connection) -> None:
    with conn.transaction():
        conn.execute("set local role postgres")
        conn.execute(
            """
            create table public.webhook_events (
              id uuid primary key default gen_random_uuid(),
              org_id uuid not null
                constraint webhook_events_org_id_fkey references public.organizations (id) on delete cascade,
              provider text not null default 'twilio',
              event_type text not null,
              payload jsonb not null default '{}',
              received_at timestamptz not null default now()
            )
            """
        )
        conn.execute(
            "create index webhook_events_org_id_received_at_idx on public.webhook_events (org_id, received_at)"
        )
        # Row level security was never enabled, yet the API role can read it.
        conn.execute(
            "grant select, insert, update, delete on public.webhook_events to authenticated, service_role"
        )
        conn.execute(
            """
            insert into public.webhook_events (id, org_id, provider, event_type, payload, received_at)
            select md5('webhook:' || n)::uuid, o.id, 'twilio',
                   (array['call.completed','call.ringing','sms.delivered','sms.received'])[1 + n %% 4],
                   jsonb_build_object('sequence', n, 'account', 'AC' || substr(md5('acct:' || o.id), 1, 16)),
                   %(anchor)s::timestamptz - make_interval(mins => 7 * n)
            from generate_series(1, 500) n
            join lateral (select id from public.organizations order by created_at, id
                          offset (n %% greatest(1, (select count(*) from public.organizations))) limit 1) o
              on true
            """,
            {"anchor": data_anchor(conn)},
        )


def _present_rls_disabled(conn: psycopg.Connection) -> bool:
    return bool(
        _one(
            conn,
            "select not c.relrowsecurity from pg_class c where c.oid = to_regclass('public.webhook_events')",
        )
    )


def _apply_rls_no_policy(conn: psycopg.Connection) -> None:
    with conn.transaction():
        conn.execute("set local role postgres")
        conn.execute(
            """
            create table public.call_notes (
              id uuid primary key default gen_random_uuid(),
              call_id uuid not null
                constraint call_notes_call_id_fkey references public.calls (id) on delete cascade,
              org_id uuid not null
                constraint call_notes_org_id_fkey references public.organizations (id) on delete cascade,
              body text not null,
              created_at timestamptz not null default now()
            )
            """
        )
        conn.execute("create index call_notes_call_id_idx on public.call_notes (call_id)")
        conn.execute("create index call_notes_org_id_created_at_idx on public.call_notes (org_id, created_at)")
        # RLS switched on, but the policy was never written: the API sees nothing.
        conn.execute("alter table public.call_notes enable row level security")
        conn.execute(
            "grant select, insert, update, delete on public.call_notes to authenticated, service_role"
        )
        conn.execute(
            """
            insert into public.call_notes (id, call_id, org_id, body, created_at)
            select md5('call-note:' || c.id)::uuid, c.id, c.org_id,
                   (array['Customer asked for a callback.','Left a voicemail.','Escalated to billing.',
                          'Booked an appointment.'])[1 + (get_byte(decode(md5(c.id::text), 'hex'), 0) % 4)],
                   c.created_at + interval '5 minutes'
            from public.calls c
            where c.status = 'completed'
              and exists (select 1 from public.organizations o where o.id = c.org_id)
            order by c.created_at desc, c.id
            limit 300
            """
        )


def _present_rls_no_policy(conn: psycopg.Connection) -> bool:
    return bool(
        _one(
            conn,
            """
            select c.relrowsecurity
                   and not exists (select 1 from pg_policy p where p.polrelid = c.oid)
            from pg_class c where c.oid = to_regclass('public.call_notes')
            """,
        )
    )


LEAKY_POLICY = "billing_records_read_all"


def _apply_leaky_policy(conn: psycopg.Connection) -> None:
    with conn.transaction():
        conn.execute("set local role postgres")
        # The dashboard's "Enable read access for all users" template, added
        # next to the tenant policy: permissive policies are OR-ed, so every
        # logged-in user now reads every org's billing.
        conn.execute(
            sql.SQL("create policy {} on public.billing_records for select to authenticated using (true)").format(
                sql.Identifier(LEAKY_POLICY)
            )
        )


def _present_leaky_policy(conn: psycopg.Connection) -> bool:
    return bool(
        _one(
            conn,
            """
            select exists (select 1 from pg_policies
                           where schemaname = 'public' and tablename = 'billing_records'
                             and policyname = %s and permissive = 'PERMISSIVE' and qual = 'true')
            """,
            (LEAKY_POLICY,),
        )
    )


UID_POLICY = "sms_messages_tenant_isolation"


def _apply_uid_without_select(conn: psycopg.Connection) -> None:
    with conn.transaction():
        conn.execute("set local role postgres")
        # Still tenant-correct, but auth.uid() is evaluated for every row.
        conn.execute(
            sql.SQL(
                """
            alter policy {} on public.sms_messages
              using (org_id in (select ou.org_id from public.org_users ou where ou.user_id = auth.uid()))
              with check (org_id in (select ou.org_id from public.org_users ou where ou.user_id = auth.uid()))
            """
            ).format(sql.Identifier(UID_POLICY))
        )


def _present_uid_without_select(conn: psycopg.Connection) -> bool:
    return bool(
        _one(
            conn,
            r"""
            select exists (
              select 1 from pg_policies
              where schemaname = 'public' and tablename = 'sms_messages'
                and (regexp_replace(coalesce(qual, ''), 'SELECT auth\.uid\(\)', '', 'gi') ~ 'auth\.uid\(\)'
                     or regexp_replace(coalesce(with_check, ''), 'SELECT auth\.uid\(\)', '', 'gi')
                        ~ 'auth\.uid\(\)'))
            """,
        )
    )


# ---------------------------------------------------------------- index faults

UNUSED_INDEX = "calls_to_number_idx"
DUPLICATE_INDEX = "sms_messages_org_created_idx"
INVALID_INDEX = "recordings_url_key"


def _index_exists(conn: psycopg.Connection, name: str) -> bool:
    return _one(conn, "select to_regclass(%s) is not null", ("public." + name,))


def _apply_unused_index(conn: psycopg.Connection) -> None:
    with conn.transaction():
        conn.execute(sql.SQL("create index {} on public.calls (to_number)").format(sql.Identifier(UNUSED_INDEX)))


def _apply_duplicate_index(conn: psycopg.Connection) -> None:
    with conn.transaction():
        # Same columns, same order as sms_messages_org_id_created_at_idx.
        conn.execute(sql.SQL("create index {} on public.sms_messages (org_id, created_at)").format(sql.Identifier(DUPLICATE_INDEX)))


def _present_duplicate_index(conn: psycopg.Connection) -> bool:
    return bool(
        _one(
            conn,
            """
            select count(*) = 2 from pg_index i
            where i.indrelid = to_regclass('public.sms_messages')
              and i.indexrelid in (to_regclass('public.sms_messages_org_id_created_at_idx'),
                                   to_regclass('public.' || %s))
              and i.indkey::text = (select indkey::text from pg_index
                                    where indexrelid = to_regclass('public.sms_messages_org_id_created_at_idx'))
            """,
            (DUPLICATE_INDEX,),
        )
    )


def _apply_invalid_index(conn: psycopg.Connection) -> None:
    ensure_autocommit(conn)
    with conn.transaction():
        # A webhook retry registered the same recording twice...
        conn.execute(
            """
            insert into public.recordings (id, call_id, org_id, url, duration, created_at)
            select md5('recording-retry:' || r.id)::uuid, r.call_id, r.org_id, r.url, r.duration,
                   r.created_at + interval '30 seconds'
            from public.recordings r
            where exists (select 1 from public.calls c where c.id = r.call_id)
            order by r.created_at, r.id
            limit 1
            """
        )
    # ...so the migration that adds uniqueness without locking fails half way,
    # and leaves an INVALID index behind (maintained on writes, never used).
    try:
        conn.execute(sql.SQL("create unique index concurrently {} on public.recordings (url)").format(sql.Identifier(INVALID_INDEX)))
    except psycopg.errors.UniqueViolation:
        pass
    else:  # pragma: no cover - the duplicate above guarantees the failure
        raise RuntimeError(f"{INVALID_INDEX} was built valid; expected a unique violation")


def _present_invalid_index(conn: psycopg.Connection) -> bool:
    return bool(
        _one(
            conn,
            "select not indisvalid from pg_index where indexrelid = to_regclass('public.' || %s)",
            (INVALID_INDEX,),
        )
    )


def _apply_fk_without_index(conn: psycopg.Connection) -> None:
    with conn.transaction():
        conn.execute("set local role postgres")
        conn.execute(
            """
            alter table public.invoices add column billing_record_id uuid
              constraint invoices_billing_record_id_fkey references public.billing_records (id)
              on delete set null
            """
        )
        conn.execute(
            """
            update public.invoices i
            set billing_record_id = (select b.id from public.billing_records b
                                     where b.org_id = i.org_id and b.created_at < i.issued_at
                                     order by b.created_at desc limit 1)
            """
        )


def _present_fk_without_index(conn: psycopg.Connection) -> bool:
    return bool(
        _one(
            conn,
            """
            select exists (select 1 from pg_constraint c
                           where c.conname = 'invoices_billing_record_id_fkey'
                             and c.conrelid = to_regclass('public.invoices'))
               and not exists (select 1 from pg_index i
                               where i.indrelid = to_regclass('public.invoices')
                                 and i.indkey[0] = (select attnum from pg_attribute
                                                    where attrelid = to_regclass('public.invoices')
                                                      and attname = 'billing_record_id'))
            """,
        )
    )


# ---------------------------------------------------------------- maintenance faults

DEAD_TUPLES_TABLE = "public.db_metrics"
NEVER_ANALYZED_TABLE = "public.user_import_staging"
SEQUENCE = "public.db_metrics_id_seq"
SEQUENCE_VALUE = 2_080_000_000  # 96.9 % of 2^31 - 1


def _apply_dead_tuples(conn: psycopg.Connection) -> None:
    ensure_autocommit(conn)
    # Autovacuum was switched off on db_metrics during an incident and never
    # switched back on; then a backfill rewrote 90 % of the rows.
    #
    # The table is first repacked with free space (fillfactor 40, then back to
    # the default) so the updates stay on their page (HOT) and the pages never
    # get full: a full page would be pruned by the next reader, which removes
    # the dead tuples without a vacuum and would hide the fault.
    table = sql.Identifier(*DEAD_TUPLES_TABLE.split("."))
    conn.execute(sql.SQL("alter table {} set (autovacuum_enabled = false, fillfactor = 40)").format(table))
    conn.execute(sql.SQL("vacuum full {}").format(table))
    conn.execute(sql.SQL("alter table {} reset (fillfactor)").format(table))
    conn.execute(sql.SQL("update {} set metric_value = metric_value where id % 10 <> 0").format(table))
    # ANALYZE subtracts this backend's not-yet-flushed dead-tuple counts from
    # its estimate: flush them now so a later ANALYZE reports the dead rows.
    conn.execute("select pg_stat_force_next_flush()")


def _present_dead_tuples(conn: psycopg.Connection) -> bool:
    return bool(
        _one(
            conn,
            """
            select coalesce('autovacuum_enabled=false' = any (c.reloptions), false)
                   and coalesce(s.n_dead_tup, 0) > 0
            from pg_class c left join pg_stat_all_tables s on s.relid = c.oid
            where c.oid = to_regclass(%s)
            """,
            (DEAD_TUPLES_TABLE,),
        )
    )


STAGING_ROWS = 1000


def _apply_never_analyzed(conn: psycopg.Connection) -> None:
    with conn.transaction():
        conn.execute("set local role postgres")
        # A bulk-import staging table (the guide's "Bulk Import Users"), created
        # with autovacuum off "for speed" and never analyzed.
        table = sql.Identifier(*NEVER_ANALYZED_TABLE.split("."))
        conn.execute(
            sql.SQL(
                """
            create table {} (
              id bigint primary key,
              org_slug text not null,
              email text not null,
              full_name text,
              role text not null default 'member',
              imported_at timestamptz not null default now()
            ) with (autovacuum_enabled = false)
            """
            ).format(table)
        )
        conn.execute(sql.SQL("alter table {} enable row level security").format(table))
        conn.execute(
            sql.SQL(
                """
            create policy user_import_staging_service_role_only on {}
              for all to service_role
              using ((select auth.role()) = 'service_role')
              with check ((select auth.role()) = 'service_role')
            """
            ).format(table)
        )
        conn.execute(sql.SQL("grant select, insert, update, delete on {} to service_role").format(table))
        conn.execute(
            sql.SQL(
                """
            insert into {} (id, org_slug, email, full_name, role, imported_at)
            select n, o.slug, 'import' || n || '@example.com', 'Imported User ' || n,
                   (array['member','member','member','viewer','admin'])[1 + n %% 5],
                   %(anchor)s::timestamptz - make_interval(days => 1, secs => n)
            from generate_series(1, %(rows)s) n
            join lateral (select slug from public.organizations order by created_at, id
                          offset (n %% greatest(1, (select count(*) from public.organizations))) limit 1) o
              on true
            """
            ).format(table),
            {"anchor": data_anchor(conn), "rows": STAGING_ROWS},
        )


def _present_never_analyzed(conn: psycopg.Connection) -> bool:
    if not _exists_rel(conn, NEVER_ANALYZED_TABLE):
        return False
    return bool(
        _one(
            conn,
            sql.SQL(
                """
                select exists (select 1 from {t})
                       and coalesce(s.last_analyze is null and s.last_autoanalyze is null, true)
                from pg_class c left join pg_stat_all_tables s on s.relid = c.oid
                where c.oid = to_regclass(%s)
                """
            ).format(t=sql.Identifier(*NEVER_ANALYZED_TABLE.split("."))),
            (NEVER_ANALYZED_TABLE,),
        )
    )


def _apply_sequence_exhaustion(conn: psycopg.Connection) -> None:
    with conn.transaction():
        # db_metrics.id is an int4 serial; years of inserts and gaps later:
        conn.execute("select setval(%s, %s)", (SEQUENCE, SEQUENCE_VALUE))


def _present_sequence_exhaustion(conn: psycopg.Connection) -> bool:
    return bool(
        _one(
            conn,
            """
            select coalesce(last_value, 0)::float8 / max_value > 0.95
            from pg_sequences where schemaname = 'public' and sequencename = 'db_metrics_id_seq'
            """,
        )
    )


# ---------------------------------------------------------------- security faults

DEFINER_FUNCTION = "public.is_org_admin(uuid)"


def _apply_definer_without_search_path(conn: psycopg.Connection) -> None:
    with conn.transaction():
        conn.execute("set local role postgres")
        # SECURITY DEFINER without `set search_path`: whoever can put objects
        # earlier on the caller's search_path can run code as postgres.
        conn.execute(
            """
            create function public.is_org_admin(p_org_id uuid) returns boolean
            language sql stable security definer
            as $$
              select exists (select 1 from public.org_users ou
                             where ou.org_id = p_org_id and ou.user_id = auth.uid()
                               and ou.role in ('owner', 'admin'))
            $$
            """
        )
        conn.execute("grant execute on function public.is_org_admin(uuid) to authenticated")


def _present_definer_without_search_path(conn: psycopg.Connection) -> bool:
    return bool(
        _one(
            conn,
            """
            select p.prosecdef
                   and not exists (select 1 from unnest(coalesce(p.proconfig, '{}')) cfg
                                   where cfg like 'search_path=%%')
            from pg_proc p where p.oid = to_regprocedure(%s)
            """,
            (DEFINER_FUNCTION,),
        )
    )


ANON_POLICY = "phone_numbers_anon_read"


def _apply_anon_grant(conn: psycopg.Connection) -> None:
    with conn.transaction():
        conn.execute("set local role postgres")
        # "The number picker on the signup page needs it": logged-out visitors
        # can now list every org's phone numbers.
        conn.execute("grant select on public.phone_numbers to anon")
        conn.execute(
            sql.SQL("create policy {} on public.phone_numbers for select to anon using (true)").format(sql.Identifier(ANON_POLICY))
        )


def _present_anon_grant(conn: psycopg.Connection) -> bool:
    return bool(
        _one(
            conn,
            """
            select has_table_privilege('anon', 'public.phone_numbers', 'select')
                   and exists (select 1 from pg_policies
                               where schemaname = 'public' and tablename = 'phone_numbers'
                                 and policyname = %s)
            """,
            (ANON_POLICY,),
        )
    )


# ---------------------------------------------------------------- cluster faults

EXTRA_SUPERUSER = "legacy_admin"


def _apply_extra_superuser(conn: psycopg.Connection) -> None:
    with conn.transaction():
        conn.execute("lock table pg_catalog.pg_authid in share row exclusive mode")
        if not _one(conn, "select exists (select 1 from pg_roles where rolname = %s)", (EXTRA_SUPERUSER,)):
            # A login role left over from the migration off the old host.
            conn.execute(sql.SQL("create role {} login superuser").format(sql.Identifier(EXTRA_SUPERUSER)))


def _revert_extra_superuser(conn: psycopg.Connection) -> None:
    with conn.transaction():
        conn.execute(sql.SQL("drop role if exists {}").format(sql.Identifier(EXTRA_SUPERUSER)))


def _present_extra_superuser(conn: psycopg.Connection) -> bool:
    return bool(
        _one(
            conn,
            "select exists (select 1 from pg_roles where rolname = %s and rolsuper and rolcanlogin)",
            (EXTRA_SUPERUSER,),
        )
    )


# ---------------------------------------------------------------- catalogue


def _index_present(name: str) -> Callable[[psycopg.Connection], bool]:
    def present(conn: psycopg.Connection) -> bool:
        return _index_exists(conn, name)

    return present


_FAULT_LIST = (
    Fault(
        "orphaned_rows",
        "The org_id foreign keys of phone_numbers, org_users, invoices, calls and sms_messages and the "
        "recordings -> calls foreign key are dropped, and rows of three deleted organizations (and "
        "recordings of deleted calls) are left behind.",
        ("orphaned_rows", "missing_foreign_keys"),
        "database",
        _apply_orphaned_rows,
        None,
        _present_orphaned_rows,
        tuple(f"{t}.{c}" for t, c in ORPHAN_FKS),
    ),
    Fault(
        "rls_disabled",
        "public.webhook_events (org_id, payload...) is readable by `authenticated` and has row level "
        "security disabled.",
        ("rls_disabled",),
        "database",
        _apply_rls_disabled,
        None,
        _present_rls_disabled,
        ("public.webhook_events",),
    ),
    Fault(
        "rls_no_policy",
        "public.call_notes has row level security enabled and no policy at all.",
        ("rls_no_policy",),
        "database",
        _apply_rls_no_policy,
        None,
        _present_rls_no_policy,
        ("public.call_notes",),
    ),
    Fault(
        "leaky_policy",
        f"A permissive `for select to authenticated using (true)` policy {LEAKY_POLICY} on "
        "public.billing_records: every logged-in user reads every org's billing.",
        ("policy_always_true", "tenant_isolation"),
        "database",
        _apply_leaky_policy,
        None,
        _present_leaky_policy,
        (f"public.billing_records.{LEAKY_POLICY}",),
    ),
    Fault(
        "uid_without_select",
        f"Policy {UID_POLICY} on public.sms_messages calls auth.uid() directly instead of "
        "`(select auth.uid())`, so it is evaluated per row.",
        ("policy_initplan",),
        "database",
        _apply_uid_without_select,
        None,
        _present_uid_without_select,
        (f"public.sms_messages.{UID_POLICY}",),
    ),
    Fault(
        "unused_index",
        f"Index public.{UNUSED_INDEX} on calls(to_number) that no query uses.",
        ("unused_indexes",),
        "database",
        _apply_unused_index,
        None,
        _index_present(UNUSED_INDEX),
        (f"public.{UNUSED_INDEX}",),
    ),
    Fault(
        "duplicate_index",
        f"Index public.{DUPLICATE_INDEX} on sms_messages(org_id, created_at), identical to "
        "public.sms_messages_org_id_created_at_idx.",
        ("duplicate_indexes",),
        "database",
        _apply_duplicate_index,
        None,
        _present_duplicate_index,
        (f"public.{DUPLICATE_INDEX}", "public.sms_messages_org_id_created_at_idx"),
    ),
    Fault(
        "fk_without_index",
        "New column public.invoices.billing_record_id with foreign key invoices_billing_record_id_fkey "
        "-> billing_records(id) and no index on it.",
        ("fk_without_index",),
        "database",
        _apply_fk_without_index,
        None,
        _present_fk_without_index,
        ("public.invoices.invoices_billing_record_id_fkey",),
    ),
    Fault(
        "invalid_index",
        f"INVALID index public.{INVALID_INDEX} left by a failed `create unique index concurrently` on "
        "recordings(url) (a webhook retry had stored one recording twice).",
        ("invalid_indexes",),
        "database",
        _apply_invalid_index,
        None,
        _present_invalid_index,
        (f"public.{INVALID_INDEX}",),
    ),
    Fault(
        "dead_tuples",
        f"{DEAD_TUPLES_TABLE} has autovacuum disabled (autovacuum_enabled = false) and 90% of its rows "
        "updated once: about half its tuples are dead.",
        ("dead_tuples",),
        "database",
        _apply_dead_tuples,
        None,
        _present_dead_tuples,
        (DEAD_TUPLES_TABLE,),
    ),
    Fault(
        "never_analyzed",
        f"{NEVER_ANALYZED_TABLE} ({STAGING_ROWS} rows) has autovacuum disabled and was never analyzed.",
        ("never_analyzed",),
        "database",
        _apply_never_analyzed,
        None,
        _present_never_analyzed,
        (NEVER_ANALYZED_TABLE,),
    ),
    Fault(
        "extra_superuser",
        f"Cluster-wide: a login role {EXTRA_SUPERUSER} with SUPERUSER.",
        ("privileged_roles",),
        "cluster",
        _apply_extra_superuser,
        _revert_extra_superuser,
        _present_extra_superuser,
        (EXTRA_SUPERUSER,),
    ),
    Fault(
        "sequence_exhaustion",
        f"{SEQUENCE} (int4 serial of db_metrics.id) set to {SEQUENCE_VALUE:,} (96.9% of 2^31-1).",
        ("sequence_exhaustion",),
        "database",
        _apply_sequence_exhaustion,
        None,
        _present_sequence_exhaustion,
        (SEQUENCE,),
    ),
    Fault(
        "definer_without_search_path",
        f"SECURITY DEFINER function {DEFINER_FUNCTION} without `set search_path`.",
        ("security_definer_search_path",),
        "database",
        _apply_definer_without_search_path,
        None,
        _present_definer_without_search_path,
        (DEFINER_FUNCTION,),
    ),
    Fault(
        "anon_grant",
        f"`grant select on public.phone_numbers to anon` plus policy {ANON_POLICY} "
        "`for select to anon using (true)`: logged-out visitors list every org's numbers.",
        ("anon_grants",),
        "database",
        _apply_anon_grant,
        None,
        _present_anon_grant,
        ("public.phone_numbers", f"public.phone_numbers.{ANON_POLICY}"),
        also_flagged_by=("policy_always_true", "tenant_isolation"),
    ),
)

#: every planted fault by name, in the order they are applied
FAULTS: dict[str, Fault] = {f.name: f for f in _FAULT_LIST}
DATABASE_FAULTS: tuple[str, ...] = tuple(n for n, f in FAULTS.items() if f.scope == "database")
CLUSTER_FAULTS: tuple[str, ...] = tuple(n for n, f in FAULTS.items() if f.scope == "cluster")

FaultSpec = Union[str, Iterable[str], None]


def parse_faults(spec: FaultSpec) -> list[str]:
    """``"all"`` | ``"none"`` | ``"a,b"`` (or an iterable of names) -> names in apply order.

    Unknown names raise :class:`UnknownFault` (a ``ValueError``) listing the valid ones.
    """
    if spec is None:
        return []
    if isinstance(spec, str):
        words = [w.strip() for w in spec.split(",") if w.strip()]
    else:
        words = []
        for item in spec:
            if not isinstance(item, str):
                raise TypeError(f"fault names must be strings, not {type(item).__name__}")
            words.extend(w.strip() for w in item.split(",") if w.strip())
    unknown = [w for w in words if w not in FAULTS and w not in ("all", "none")]
    if unknown:
        raise UnknownFault(unknown, FAULTS)
    if "all" in words:  # "all" wins over anything listed with it
        return list(FAULTS)
    wanted = set(words)
    return [name for name in FAULTS if name in wanted]


def apply_faults(conn: psycopg.Connection, names: FaultSpec) -> list[str]:
    """Plant the named faults (in catalogue order) and return their names.

    *conn*: superuser, autocommit, to a database seeded by :func:`load_data`.
    A fault that is already present is not planted twice (and is still returned).
    """
    ensure_autocommit(conn)
    applied = []
    for name in parse_faults(names):
        fault = FAULTS[name]
        if not fault.present(conn):
            try:
                fault.apply(conn)
            finally:
                conn.execute("reset role")
        applied.append(name)
    return applied


def revert_faults(conn: psycopg.Connection, names: FaultSpec) -> list[str]:
    """Revert the named faults that can be reverted (the cluster-scope ones)."""
    ensure_autocommit(conn)
    reverted = []
    for name in parse_faults(names):
        fault = FAULTS[name]
        if fault.revert is not None:
            fault.revert(conn)
            reverted.append(name)
    return reverted
