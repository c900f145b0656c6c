-- rls_disabled: tables in the API-exposed schemas (%(schemas)s) without row level security, and whether
--   the API roles (anon, authenticated) hold privileges on them.
-- Privileges: none (ACLs are in pg_class).
-- Caveats: without RLS a granted API role reads every row of every tenant; privileges are tested with
--   has_table_privilege / has_any_column_privilege (so grants through PUBLIC or role membership count).
with api as (
  select (select r.oid from pg_catalog.pg_roles r where r.rolname = 'anon') as anon,
         (select r.oid from pg_catalog.pg_roles r where r.rolname = 'authenticated') as authenticated
)
select n.nspname::text as schema,
       c.relname::text as table,
       pg_catalog.format('%%I.%%I', n.nspname, c.relname) as name,
       c.relkind::text as relkind,
       c.relispartition as is_partition,
       array_remove(array[
         case when pg_catalog.has_any_column_privilege(api.anon, c.oid, 'select') then 'anon:select' end,
         case when pg_catalog.has_table_privilege(api.anon, c.oid, 'insert,update,delete') then 'anon:write' end,
         case when pg_catalog.has_any_column_privilege(api.authenticated, c.oid, 'select') then 'authenticated:select' end,
         case when pg_catalog.has_table_privilege(api.authenticated, c.oid, 'insert,update,delete') then 'authenticated:write' end
       ], null) as api_access,
       (select count(*) from pg_catalog.pg_policy p where p.polrelid = c.oid)::int as policies
from pg_catalog.pg_class c
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
cross join api
where c.relkind in ('r', 'p')
  and not c.relrowsecurity
  and n.nspname = any (%(schemas)s::text[])
order by name
