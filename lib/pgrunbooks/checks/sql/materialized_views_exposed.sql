-- materialized_views_exposed: materialized views in the exposed schemas (%(exposed_schemas)s) that anon or
--   authenticated can select (splinter 0016), with the row-level-security tables they were computed
--   from: a materialized view has no RLS and is filled with its owner's rights.
-- Privileges: none (catalogs only).
-- Caveats: the tables are read from its rewrite rule (pg_depend), one level deep.
with api as (
  select (select r.oid from pg_catalog.pg_roles r where r.rolname = 'anon') as anon,
         (select r.oid from pg_catalog.pg_roles r where r.rolname = 'authenticated') as authenticated
)
select n.nspname::text as schema,
       c.relname::text as view,
       pg_catalog.format('%%I.%%I', n.nspname, c.relname) as name,
       pg_catalog.pg_get_userbyid(c.relowner)::text as owner,
       array_remove(array[
         case when pg_catalog.has_any_column_privilege(api.anon, c.oid, 'select') then 'anon' end,
         case when pg_catalog.has_any_column_privilege(api.authenticated, c.oid, 'select') then 'authenticated' end
       ], null) as api_select,
       coalesce((select array_agg(distinct t.oid::regclass::text)
                 from pg_catalog.pg_rewrite w
                 join pg_catalog.pg_depend d on d.classid = 'pg_catalog.pg_rewrite'::regclass and d.objid = w.oid
                                            and d.refclassid = 'pg_catalog.pg_class'::regclass
                 join pg_catalog.pg_class t on t.oid = d.refobjid and t.oid <> c.oid
                 where w.ev_class = c.oid and t.relkind in ('r', 'p') and t.relrowsecurity), '{}') as rls_tables
from pg_catalog.pg_class c
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
cross join api
where c.relkind = 'm'
  and n.nspname = any (%(exposed_schemas)s::text[])
  and (pg_catalog.has_any_column_privilege(api.anon, c.oid, 'select')
       or pg_catalog.has_any_column_privilege(api.authenticated, c.oid, 'select'))
order by name
