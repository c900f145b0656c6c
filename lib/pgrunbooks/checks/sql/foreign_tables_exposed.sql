-- foreign_tables_exposed: foreign tables in the exposed schemas (%(exposed_schemas)s) that anon or
--   authenticated can select (splinter 0017), with their server and wrapper: a foreign table has no
--   row level security, and reads the remote side with the user mapping's credentials.
-- Privileges: none (catalogs only).
-- Caveats: privileges through PUBLIC or role membership count.
with api as (
  select (select r.oid from pg_catalog.pg_roles r where r.rolname = 'anon') as anon,
         (select r.oid from pg_catalog.pg_roles r where r.rolname = 'authenticated') as authenticated
)
select n.nspname::text as schema,
       c.relname::text as table,
       pg_catalog.format('%%I.%%I', n.nspname, c.relname) as name,
       s.srvname::text as server,
       w.fdwname::text as wrapper,
       array_remove(array[
         case when pg_catalog.has_any_column_privilege(api.anon, c.oid, 'select') then 'anon' end,
         case when pg_catalog.has_any_column_privilege(api.authenticated, c.oid, 'select') then 'authenticated' end
       ], null) as api_select
from pg_catalog.pg_class c
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
join pg_catalog.pg_foreign_table f on f.ftrelid = c.oid
join pg_catalog.pg_foreign_server s on s.oid = f.ftserver
join pg_catalog.pg_foreign_data_wrapper w on w.oid = s.srvfdw
cross join api
where c.relkind = 'f'
  and n.nspname = any (%(exposed_schemas)s::text[])
  and (pg_catalog.has_any_column_privilege(api.anon, c.oid, 'select')
       or pg_catalog.has_any_column_privilege(api.authenticated, c.oid, 'select'))
order by name
