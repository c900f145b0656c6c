"""The catalogue of planted faults: one :class:`Fault` entry per fault, in apply order.

The SQL of each is in ``seed/sql/faults/<name>.sql`` (with ``.probe.sql``, and ``.revert.sql``
for the cluster fault); ``docs/faults.md`` is rendered from these entries
(``python -m pgrunbooks.seed.faults.docs > docs/faults.md``). The constants are the names the
checks' tests look for.
"""

from __future__ import annotations

from pgrunbooks.names import qualified

from . import hooks
from .model import Fault

#: (table, column, referenced table) of the rows the orphaned_rows fault plants.
ORPHAN_REFERENCES = (
    ("public.phone_numbers", "org_id", "public.organizations"),
    ("public.org_users", "org_id", "public.organizations"),
    ("public.invoices", "org_id", "public.organizations"),
    ("public.calls", "org_id", "public.organizations"),
    ("public.sms_messages", "org_id", "public.organizations"),
    ("public.recordings", "call_id", "public.calls"),
)
#: the foreign keys orphaned_rows drops, as ``table.constraint``
ORPHAN_FKS = (
    "public.phone_numbers.phone_numbers_org_id_fkey",
    "public.org_users.org_users_org_id_fkey",
    "public.invoices.invoices_org_id_fkey",
    "public.calls.calls_org_id_fkey",
    "public.sms_messages.sms_messages_org_id_fkey",
    "public.recordings.recordings_call_id_fkey",
)
#: orphan rows planted per table
ORPHAN_COUNTS = {
    "phone_numbers": 5, "org_users": 4, "invoices": 6, "calls": 25, "sms_messages": 30, "recordings": 3,
}
DELETED_ORGS = 3

LEAKY_POLICY = "billing_records_read_all"
UID_POLICY = "sms_messages_tenant_isolation"
ANON_POLICY = "phone_numbers_anon_read"
UNUSED_INDEX = "calls_to_number_idx"
DUPLICATE_INDEX = "sms_messages_org_created_idx"
INVALID_INDEX = "recordings_url_key"
DEAD_TUPLES = ("public", "db_metrics")
DEAD_TUPLES_TABLE = qualified(*DEAD_TUPLES)
NEVER_ANALYZED = ("public", "user_import_staging")
NEVER_ANALYZED_TABLE = qualified(*NEVER_ANALYZED)
STAGING_ROWS = 1000
SEQUENCE = "public.db_metrics_id_seq"
SEQUENCE_VALUE = 2_080_000_000  # 96.9 % of 2^31 - 1
DEFINER = ("public", "is_org_admin")
DEFINER_FUNCTION = qualified(*DEFINER) + "(uuid)"
EXTRA_SUPERUSER = "legacy_admin"
NO_PK_TABLE = "public.call_event_log"
AUTH_USERS_VIEW = "public.member_directory"
METADATA_POLICY = "invoices_delete_admins_only"
DEFINER_VIEW = "public.org_call_summary"
POLICY_WITHOUT_RLS_TABLE = "public.announcements"
POLICY_WITHOUT_RLS = "announcements_published_read"
PUBLIC_EXTENSION = "pg_trgm"
EXPOSED_MATVIEW = "public.monthly_sms_totals"
EXPOSED_FOREIGN_TABLE = "public.legacy_invoices"
LOCKOUT_POLICY = "invoices_tenant_isolation"
LOCKOUT_TABLE = "public.invoices"
UNGRANTED_TABLE = "public.recordings"
MUTABLE_FUNCTION = ("public", "org_display_name")
MUTABLE_FUNCTION_NAME = qualified(*MUTABLE_FUNCTION) + "(uuid)"
DEFINER_ROWS = ("public", "org_billing_history")
DEFINER_ROWS_FUNCTION = qualified(*DEFINER_ROWS) + "(uuid)"

FAULT_LIST = (
    Fault(
        name="orphaned_rows",
        scope="database",
        finds=("orphaned_rows", "missing_foreign_keys"),
        summary=f"drops {len(ORPHAN_FKS)} FKs; rows of {DELETED_ORGS} deleted orgs in phone_numbers, org_users, "
        "invoices, calls, sms_messages; recordings of deleted calls",
        description="Drops the foreign keys " + ", ".join(f"`{fk.split('.')[-1]}`" for fk in ORPHAN_FKS)
        + " (these columns now carry no FK), then leaves behind the rows of "
        f"{DELETED_ORGS} organizations deleted by hand (`md5('deleted-org:1..{DELETED_ORGS}')::uuid`, absent "
        "from `organizations`): " + ", ".join(f"{n} `{t}`" for t, n in ORPHAN_COUNTS.items() if t != "recordings")
        + f", and {ORPHAN_COUNTS['recordings']} `recordings` whose `call_id` (`md5('deleted-call:n')`) "
        "does not exist.",
        why="The guide's \"Merge Organizations\" and manual deletes do exactly this. Orphans inflate "
        "reports, break joins, and are invisible through RLS (no member sees them), so nobody notices. "
        "The guide's own check (`org_id NOT IN (SELECT id …)`) silently returns nothing when the "
        "subquery yields a NULL; use `NOT EXISTS`.",
        found_note="`orphaned_rows` reports the rows, `missing_foreign_keys` the `org_id` / `call_id` "
        "columns without a constraint.",
        objects=ORPHAN_FKS,
        params={**ORPHAN_COUNTS, "deleted_orgs": DELETED_ORGS},
    ),
    Fault(
        name="rls_disabled",
        scope="database",
        finds=("rls_disabled",),
        summary="table `public.webhook_events`, RLS disabled, granted to `authenticated`",
        description="`public.webhook_events (id, org_id → organizations, provider, event_type, payload "
        "jsonb, received_at)` with index `webhook_events_org_id_received_at_idx`, 500 rows, `select, "
        "insert, update, delete` granted to `authenticated` and `service_role`, and row level security "
        "never enabled.",
        why="Through the API every logged-in user reads every tenant's webhook payloads.",
        objects=("public.webhook_events",),
        params={"rows": 500},
    ),
    Fault(
        name="rls_no_policy",
        scope="database",
        finds=("rls_no_policy",),
        summary="table `public.call_notes`, RLS enabled, no policy",
        description="`public.call_notes (id, call_id → calls on delete cascade, org_id → organizations, "
        "body, created_at)` with indexes `call_notes_call_id_idx`, `call_notes_org_id_created_at_idx`, "
        "300 rows, granted to `authenticated`, RLS enabled and no policy.",
        why="Fail-closed, but the feature is silently broken: the API returns no rows and rejects every "
        "write; someone \"fixes\" it with `using (true)`.",
        objects=("public.call_notes",),
        params={"rows": 300},
    ),
    Fault(
        name="table_without_primary_key",
        scope="database",
        finds=("tables_without_primary_key",),
        summary=f"table `{NO_PK_TABLE}`, no primary key",
        description=f"`{NO_PK_TABLE} (call_id → calls on delete cascade, event, payload jsonb, logged_at)` "
        "with index `call_event_log_call_id_idx`, 400 rows and no primary key; RLS enabled with a "
        "service-role-only policy, granted to `service_role` only.",
        why="An append-only log \"does not need a key\" until someone must delete one duplicate row, "
        "the Data API must update one row, or logical replication must replicate its deletes "
        "(splinter 0004).",
        objects=(NO_PK_TABLE,),
        params={"rows": 400},
    ),
    Fault(
        name="auth_users_view",
        scope="database",
        finds=("auth_users_exposed",),
        summary=f"view `{AUTH_USERS_VIEW}` joining `auth.users`, granted to `authenticated`",
        description=f"`create view {AUTH_USERS_VIEW} as select ou.org_id, ou.user_id, ou.role, u.email, "
        "u.created_at as signed_up_at from public.org_users ou join auth.users u on u.id = ou.user_id`, owned by "
        "`postgres`, not `security_invoker`, `select` granted to `authenticated`.",
        why="The team page needed the members' e-mails; through the API every signed-in user now reads "
        "every user's e-mail (splinter 0002).",
        found_note="The view also runs as its owner over `org_users`, so `security_definer_views` reports "
        "it too.",
        objects=(AUTH_USERS_VIEW,),
        also_flagged_by=("security_definer_views",),
    ),
    Fault(
        name="user_metadata_policy",
        scope="database",
        finds=("policy_user_metadata",),
        summary=f"restrictive policy `{METADATA_POLICY}` on `public.invoices` deciding on `user_metadata`",
        description=f"`create policy {METADATA_POLICY} on public.invoices as restrictive for delete to "
        "authenticated using ((((select auth.jwt()) -> 'user_metadata') ->> 'role') = 'admin')`.",
        why="Any member sets `user_metadata.role = 'admin'` on themselves (`supabase.auth.updateUser`) and "
        "deletes their organization's invoices (splinter 0015).",
        objects=(f"public.invoices.{METADATA_POLICY}",),
        names={"policy": (METADATA_POLICY,)},
    ),
    Fault(
        name="definer_view",
        scope="database",
        finds=("security_definer_views",),
        summary=f"view `{DEFINER_VIEW}` over `public.calls`, not `security_invoker`, granted to `authenticated`",
        description=f"`create view {DEFINER_VIEW} as select org_id, count(*) as calls, minutes, last_call_at "
        "from public.calls group by org_id`, owned by `postgres` (the owner of `calls`), `select` granted to "
        "`authenticated`.",
        why="The view runs as `postgres`, so the tenant policy of `calls` does not apply: every member reads "
        "every organization's call totals (splinter 0010).",
        objects=(DEFINER_VIEW,),
    ),
    Fault(
        name="policy_without_rls",
        scope="database",
        finds=("policies_without_rls",),
        summary=f"table `{POLICY_WITHOUT_RLS_TABLE}` with policy `{POLICY_WITHOUT_RLS}`, RLS disabled, granted "
        "to `authenticated`",
        description=f"`{POLICY_WITHOUT_RLS_TABLE} (id identity, title, body, published_at)` with 40 rows (half "
        f"unpublished), `create policy {POLICY_WITHOUT_RLS} … for select to authenticated using (published_at "
        "<= now())`, `select` granted to `authenticated`, row level security never enabled.",
        why="The policy looks like protection and does nothing: every member reads the unpublished drafts "
        "(splinter 0007).",
        objects=(POLICY_WITHOUT_RLS_TABLE, f"{POLICY_WITHOUT_RLS_TABLE}.{POLICY_WITHOUT_RLS}"),
        also_flagged_by=("rls_disabled",),
        names={"policy": (POLICY_WITHOUT_RLS,)},
        params={"rows": 40},
    ),
    Fault(
        name="extension_in_public",
        scope="database",
        finds=("extensions_in_public",),
        summary=f"extension `{PUBLIC_EXTENSION}` in schema `public`",
        description=f"`create extension {PUBLIC_EXTENSION} with schema public` (what a bare `create extension` "
        "does while `public` leads the search_path), by the platform admin (`supabase_admin`).",
        why="Its functions and operators join the application's schema and the Data API; Supabase keeps "
        "extensions in `extensions` (splinter 0014).",
        objects=(f"extension:{PUBLIC_EXTENSION}",),
        names={"extension": (PUBLIC_EXTENSION,)},
    ),
    Fault(
        name="exposed_materialized_view",
        scope="database",
        finds=("materialized_views_exposed",),
        summary=f"materialized view `{EXPOSED_MATVIEW}` over `public.sms_messages`, granted to `authenticated`",
        description=f"`create materialized view {EXPOSED_MATVIEW} as select org_id, date_trunc('month', "
        "created_at) as month, count(*) from public.sms_messages group by 1, 2`, owned by `postgres`, "
        "`select` granted to `authenticated`.",
        why="A materialized view has no row level security: every member reads every organization's SMS "
        "totals (splinter 0016).",
        objects=(EXPOSED_MATVIEW,),
    ),
    Fault(
        name="exposed_foreign_table",
        scope="database",
        finds=("foreign_tables_exposed",),
        summary=f"foreign table `{EXPOSED_FOREIGN_TABLE}` (postgres_fdw), granted to `authenticated`",
        description="`postgres_fdw` in `extensions` and server `legacy_billing` (host "
        "`legacy-billing.internal`, never connected to), both the platform admin's, and "
        f"`{EXPOSED_FOREIGN_TABLE} (id, org_id, amount, issued_at)` owned by "
        "`postgres`, `select` granted to `authenticated`.",
        why="A foreign table has no row level security: the API would serve the old billing system's "
        "invoices of every organization to any member (splinter 0017).",
        objects=(EXPOSED_FOREIGN_TABLE,),
    ),
    Fault(
        name="leaky_policy",
        scope="database",
        finds=("policy_always_true", "tenant_isolation"),
        summary=f"policy `{LEAKY_POLICY}` on `public.billing_records`: `for select to authenticated using (true)`",
        description=f"`create policy {LEAKY_POLICY} on public.billing_records for select to authenticated "
        "using (true)` next to the tenant policy `billing_records_tenant_isolation` (the dashboard's "
        "\"Enable read access for all users\" template).",
        why="Permissive policies are OR-ed: every logged-in user now reads every organization's billing. "
        "(Writes are still isolated; so are the other tables.)",
        found_note="`policy_always_true` reports the `true` qual, `tenant_isolation` that a member of one "
        "org sees other orgs' rows in `billing_records`.",
        objects=(f"public.billing_records.{LEAKY_POLICY}",),
        names={"policy": (LEAKY_POLICY,)},
    ),
    Fault(
        name="uid_without_select",
        scope="database",
        finds=("policy_initplan",),
        summary=f"policy `{UID_POLICY}` rewritten with bare `auth.uid()`",
        description=f"`alter policy {UID_POLICY} on public.sms_messages` to `org_id in (select ou.org_id "
        "from public.org_users ou where ou.user_id = auth.uid())` (both `using` and `with check`).",
        why="Still correct, but `auth.uid()` is evaluated for every row instead of once per statement (an "
        "InitPlan, which `(select auth.uid())` gives); on large tables that is the difference between "
        "milliseconds and seconds.",
        found_note="`pg_policies.qual` shows the wrapped form as `( SELECT auth.uid() AS uid)`.",
        objects=(f"public.sms_messages.{UID_POLICY}",),
        names={"policy": (UID_POLICY,)},
    ),
    Fault(
        name="unused_index",
        scope="database",
        finds=("unused_indexes",),
        summary=f"index `public.{UNUSED_INDEX}` on `calls (to_number)`, never scanned",
        description=f"`create index {UNUSED_INDEX} on public.calls (to_number)`, non-unique, backing no "
        "constraint, on the biggest table. `settle` never scans it, so `pg_stat_user_indexes.idx_scan = 0`.",
        why="It costs disk, write amplification and vacuum time, and helps no query.",
        objects=(f"public.{UNUSED_INDEX}",),
        names={"index": (UNUSED_INDEX,)},
    ),
    Fault(
        name="duplicate_index",
        scope="database",
        finds=("duplicate_indexes",),
        summary=f"index `public.{DUPLICATE_INDEX}`, identical to `sms_messages_org_id_created_at_idx`",
        description=f"`create index {DUPLICATE_INDEX} on public.sms_messages (org_id, created_at)`: the "
        "same columns, order, opclasses and predicate as `sms_messages_org_id_created_at_idx`.",
        why="Twice the write cost and space for nothing. (`settle` scans both so that only `unused_index` "
        "shows zero scans.)",
        objects=(f"public.{DUPLICATE_INDEX}", "public.sms_messages_org_id_created_at_idx"),
        names={"index": (DUPLICATE_INDEX,)},
    ),
    Fault(
        name="fk_without_index",
        scope="database",
        finds=("fk_without_index",),
        summary="column `public.invoices.billing_record_id`, FK `invoices_billing_record_id_fkey`, no index",
        description="`alter table public.invoices add column billing_record_id uuid constraint "
        "invoices_billing_record_id_fkey references public.billing_records (id) on delete set null`, "
        "filled for every invoice, with no index leading with `billing_record_id`.",
        why="Every delete or key update on `billing_records` scans `invoices` (and locks more than it "
        "should); joins on the column are slow.",
        objects=("public.invoices.invoices_billing_record_id_fkey",),
    ),
    Fault(
        name="invalid_index",
        scope="database",
        finds=("invalid_indexes",),
        summary=f"INVALID index `public.{INVALID_INDEX}` from a failed `create unique index concurrently`",
        description="One duplicate row in `recordings` (a webhook retry: `md5('recording-retry:' || id)`, "
        f"same `call_id`/`url` as the oldest recording), then `create unique index concurrently "
        f"{INVALID_INDEX} on public.recordings (url)`, which fails with a unique violation and leaves "
        f"`{INVALID_INDEX}` with `pg_index.indisvalid = false`.",
        why="An invalid index is never used by the planner but may still be maintained on writes; a later "
        "`create … if not exists` skips it. Fix: `drop index concurrently`, then rebuild (after "
        "de-duplicating).",
        objects=(f"public.{INVALID_INDEX}",),
        names={"index": (INVALID_INDEX,)},
        hook=hooks.fail_a_concurrent_unique_index,
        hook_reason="`create index concurrently` cannot run inside a transaction, and the fault is its failure.",
    ),
    Fault(
        name="dead_tuples",
        scope="database",
        finds=("dead_tuples",),
        summary=f"`{DEAD_TUPLES_TABLE}`: autovacuum off, 90 % of rows updated once (~47 % of tuples dead)",
        description=f"`alter table {DEAD_TUPLES_TABLE} set (autovacuum_enabled = false)`, then 90 % of its "
        "rows updated once (`update … where id % 10 <> 0`). At scale 1: 40,000 live and 36,000 dead "
        "tuples (`pg_stat_user_tables.n_dead_tup`). The table is first repacked with free space "
        "(fillfactor 40, then reset) so the updates stay on their pages and no page is full: a reader "
        "prunes dead tuples on full pages without any vacuum, which would hide the fault.",
        why="Nothing reclaims the space; scans read twice the pages, the table bloats.",
        objects=(DEAD_TUPLES_TABLE,),
        names={"table": DEAD_TUPLES},
        params={"keep_every": 10},
        hook=hooks.repack_with_free_space,
        hook_reason="the repack (`vacuum full`) cannot run inside a transaction.",
    ),
    Fault(
        name="never_analyzed",
        scope="database",
        finds=("never_analyzed",),
        summary=f"table `{NEVER_ANALYZED_TABLE}` ({STAGING_ROWS} rows), autovacuum off, never analyzed",
        description=f"`{NEVER_ANALYZED_TABLE} (id bigint pk, org_slug, email, full_name, role, "
        f"imported_at)` with `autovacuum_enabled = false`, RLS + a service-role policy, {STAGING_ROWS} "
        "rows, never analyzed: `last_analyze` and `last_autoanalyze` are null, `pg_class.reltuples = -1`. "
        "`settle` reloads it (truncate + insert of the same rows in one transaction, like the nightly "
        f"import) so `n_live_tup = {STAGING_ROWS}` even in a freshly cloned database.",
        why="Without statistics the planner guesses row counts; joins against the table get bad plans.",
        objects=(NEVER_ANALYZED_TABLE,),
        names={"table": NEVER_ANALYZED},
        params={"rows": STAGING_ROWS},
    ),
    Fault(
        name="extra_superuser",
        scope="cluster",
        finds=("privileged_roles",),
        summary=f"login role `{EXTRA_SUPERUSER}` with SUPERUSER",
        description=f"`create role {EXTRA_SUPERUSER} login superuser` (a leftover from a migration). Roles "
        "are cluster-wide: every database sees it. `revert` drops it "
        "(`revert_faults(conn, [\"extra_superuser\"])`); seeding without it reverts it too.",
        why="A superuser bypasses RLS and every permission, and on Supabase no customer role should be one.",
        found_note="In a clean cluster the only superuser is `supabase_admin`; `postgres` is not a "
        "superuser but has BYPASSRLS, CREATEROLE, CREATEDB, as on Supabase.",
        objects=(EXTRA_SUPERUSER,),
        names={"role": (EXTRA_SUPERUSER,)},
        hook=hooks.create_role_once,
        hook_reason="`create role` has no `if not exists`, and a role is shared by every database.",
    ),
    Fault(
        name="sequence_exhaustion",
        scope="database",
        finds=("sequence_exhaustion",),
        summary=f"`{SEQUENCE}` (int4 serial) at {SEQUENCE_VALUE:,} = 96.9 % of 2^31-1",
        description=f"`select setval('{SEQUENCE}', {SEQUENCE_VALUE})`: the int4 `serial` behind "
        "`db_metrics.id` is at 96.9 % of 2,147,483,647.",
        why="About 67 million inserts from now every insert fails (\"nextval: reached maximum value\"); the "
        "fix (`alter … type bigint`) rewrites the table.",
        objects=(SEQUENCE,),
        names={"sequence": tuple(SEQUENCE.split("."))},
        params={"value": SEQUENCE_VALUE},
    ),
    Fault(
        name="definer_without_search_path",
        scope="database",
        finds=("security_definer_search_path",),
        summary=f"function `{DEFINER_FUNCTION}`, SECURITY DEFINER, no `set search_path`",
        description=f"`{qualified(*DEFINER)}(p_org_id uuid) returns boolean language sql stable security "
        "definer` (owner `postgres`, executable by `authenticated` and PUBLIC) with no `set search_path`.",
        why="The function runs with its owner's rights but resolves names through the caller's "
        "`search_path`: whoever can create objects in a schema earlier on that path can run code as "
        "`postgres`. The clean schema's `public.user_org_ids()` is SECURITY DEFINER **with** "
        "`set search_path = ''` (the true negative).",
        objects=(DEFINER_FUNCTION,),
        also_flagged_by=("definer_api_execute",),
        names={"function": DEFINER},
    ),
    Fault(
        name="anon_grant",
        scope="database",
        finds=("anon_grants",),
        summary=f"`grant select on public.phone_numbers to anon` + policy `{ANON_POLICY}` "
        "`for select to anon using (true)`",
        description=f"`grant select on public.phone_numbers to anon` and `create policy {ANON_POLICY} on "
        "public.phone_numbers for select to anon using (true)`.",
        why="Logged-out visitors (the public API key) list every organization's phone numbers. On the "
        "clean schema `anon` has no privilege on any table in `public`.",
        found_note="It is also, legitimately, a `using (true)` policy and a cross-tenant read, so "
        "`policy_always_true` and `tenant_isolation` may report it too (`Fault.also_flagged_by`).",
        objects=("public.phone_numbers", f"public.phone_numbers.{ANON_POLICY}"),
        also_flagged_by=("policy_always_true", "tenant_isolation"),
        names={"policy": (ANON_POLICY,)},
    ),
    Fault(
        name="locking_out_policy",
        scope="database",
        finds=("tenant_isolation",),
        summary=f"policy `{LOCKOUT_POLICY}` rewritten as `org_id::text = (select auth.uid())::text`",
        description=f"`alter policy {LOCKOUT_POLICY} on {LOCKOUT_TABLE} using (org_id::text = (select "
        "auth.uid())::text) with check (…the same…)`: the organization id compared with the user's id.",
        why="The guide's own \"fix\" for a leak: nothing leaks any more because no member sees anything. The "
        "invoices page is empty for everyone and every insert is rejected; a lint sees a tenant-looking policy.",
        found_note="`tenant_isolation` proves it the other way round: a member fetches a sample of their own "
        "organizations' invoices as `authenticated` and sees none; the finding names the policy and the member.",
        objects=(f"{LOCKOUT_TABLE}.{LOCKOUT_POLICY}",),
        names={"policy": (LOCKOUT_POLICY,)},
    ),
    Fault(
        name="missing_grant",
        scope="database",
        finds=("tenant_isolation",),
        summary=f"`revoke select on {UNGRANTED_TABLE} from authenticated` (its tenant policy stays)",
        description=f"`revoke select on {UNGRANTED_TABLE} from authenticated`; insert, update, delete and the "
        "policy `recordings_tenant_isolation` stay.",
        why="A migration that re-creates grants and forgets one: every member's read fails with "
        "`permission denied` (SQLSTATE 42501) although the policy is right.",
        found_note="`tenant_isolation` reads the table as a member and reports the 42501 it gets (matched by "
        "SQLSTATE), with the policies written for members.",
        objects=(UNGRANTED_TABLE,),
    ),
    Fault(
        name="mutable_search_path",
        scope="database",
        finds=("function_search_path",),
        summary=f"function `{MUTABLE_FUNCTION_NAME}` (SECURITY INVOKER) without `set search_path`",
        description=f"`{qualified(*MUTABLE_FUNCTION)}(p_org_id uuid) returns text language sql stable` (owner "
        "`postgres`, executable by PUBLIC) with no `set search_path`; its body is schema-qualified.",
        why="It resolves operators and unqualified names on its caller's `search_path`: called from a definer "
        "function or a policy it can be steered to another schema's objects (splinter 0011). The clean "
        "schema has no function in `public` without a pinned `search_path` (the true negative).",
        objects=(MUTABLE_FUNCTION_NAME,),
        names={"function": MUTABLE_FUNCTION},
    ),
    Fault(
        name="definer_returns_tenant_rows",
        scope="database",
        finds=("definer_api_execute",),
        summary=f"function `{DEFINER_ROWS_FUNCTION}` SECURITY DEFINER, returns `setof public.billing_records`, "
        "executable by `authenticated`",
        description=f"`{qualified(*DEFINER_ROWS)}(p_org_id uuid) returns setof public.billing_records language sql "
        "stable security definer set search_path = ''` (owner `postgres`, which bypasses RLS); EXECUTE revoked "
        "from PUBLIC, granted to `authenticated`.",
        why="Through the Data API's `/rpc` any logged-in user reads any organization's billing by passing its "
        "id: the function runs as its owner, so `billing_records`' policies never apply (splinter 0029). "
        "The clean schema's `public.user_org_ids()` is a definer function too, but only policies call it and it "
        "returns the caller's own organization ids: reported as info.",
        found_note="`definer_api_execute` grades it critical (it returns rows of a tenant table with RLS). The "
        "`definer_without_search_path` fault's function, executable by PUBLIC, is a warning there too.",
        objects=(DEFINER_ROWS_FUNCTION,),
        names={"function": DEFINER_ROWS},
    ),
)

# The runtime faults (scope ``runtime``, for the incident playbooks) are in ``runtime_catalogue.py``.
