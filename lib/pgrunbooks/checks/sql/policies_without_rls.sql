-- policies_without_rls: tables in the exposed schemas (%(exposed_schemas)s) that have policies while row
--   level security is disabled (splinter 0007): the policies are ignored, and what the API roles may
--   do on the table.
-- Privileges: none (catalogs only).
-- Caveats: privileges through PUBLIC or role membership count.
with api as (
  select (select r.oid from pg_catalog.pg_roles r where r.rolname = 'anon') as anon,
         (select r.oid from pg_catalog.pg_roles r where r.rolname = 'authenticated') as authenticated
)
select n.nspname::text as schema,
       c.relname::text as table,
       pg_catalog.format('%%I.%%I', n.nspname, c.relname) as name,
       array(select pg_catalog.quote_ident(p.polname) from pg_catalog.pg_policy p
             where p.polrelid = c.oid order by p.polname) as policies,
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
  and not c.relrowsecurity
  and n.nspname = any (%(exposed_schemas)s::text[])
  and exists (select 1 from pg_catalog.pg_policy p where p.polrelid = c.oid)
order by name
