-- never_analyzed: a bulk-import staging table (the guide's "Bulk Import Users"), created with
--   autovacuum off "for speed" and never analyzed.
-- Plants: a table `table` (id bigint primary key, org_slug, email, full_name, role, imported_at) with
--   autovacuum_enabled = false, row level security and a service-role policy, `rows` rows;
--   last_analyze and last_autoanalyze stay null and pg_class.reltuples -1.
-- Found by: never_analyzed.
-- Identifiers: table. Values: anchor (the data's anchor), rows.

set local role postgres;

create table {table} (
  id bigint primary key,
  org_slug text not null,
  email text not null,
  full_name text,
  role text not null default 'member',
  imported_at timestamptz not null default now()
) with (autovacuum_enabled = false);

alter table {table} enable row level security;
create policy user_import_staging_service_role_only on {table}
  for all to service_role
  using ((select auth.role()) = 'service_role')
  with check ((select auth.role()) = 'service_role');
grant select, insert, update, delete on {table} to service_role;

insert into {table} (id, org_slug, email, full_name, role, imported_at)
select n, o.slug, 'import' || n || '@example.com', 'Imported User ' || n,
       (array['member', 'member', 'member', 'viewer', 'admin'])[1 + n %% 5],
       %(anchor)s::timestamptz - make_interval(days => 1, secs => n)
from generate_series(1, %(rows)s) n
join lateral (select slug from public.organizations order by created_at, id
              offset (n %% greatest(1, (select count(*) from public.organizations))) limit 1) o
  on true;
