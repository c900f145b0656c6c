-- rls_no_policy: tables with row level security enabled and no policy at all (only owners and BYPASSRLS
--   roles see any row), with the API roles' privileges on them.
-- Privileges: none.
-- Caveats: on purpose for tables only the service role should touch; then write that policy down
--   (for all to service_role …) or revoke the API roles' privileges, so the intent is explicit.
with api as (
  select (select r.oid from pg_catalog.pg_roles r where r.rolname = 'anon') as anon,
         (select r.oid from pg_catalog.pg_roles r where r.rolname = 'authenticated') as authenticated
)
select n.nspname::text as schema,
       c.relname::text as table,
       pg_catalog.format('%%I.%%I', n.nspname, c.relname) as name,
       c.relforcerowsecurity as forced,
       array_remove(array[
         case when pg_catalog.has_any_column_privilege(api.anon, c.oid, 'select') then 'anon:select' end,
         case when pg_catalog.has_table_privilege(api.anon, c.oid, 'insert,update,delete') then 'anon:write' end,
         case when pg_catalog.has_any_column_privilege(api.authenticated, c.oid, 'select') then 'authenticated:select' end,
         case when pg_catalog.has_table_privilege(api.authenticated, c.oid, 'insert,update,delete') then 'authenticated:write' end
       ], null) as api_access
from pg_catalog.pg_class c
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
cross join api
where c.relkind in ('r', 'p')
  and c.relrowsecurity
  and n.nspname = any (%(schemas)s::text[])
  and not exists (select 1 from pg_catalog.pg_policy p where p.polrelid = c.oid)
order by name
