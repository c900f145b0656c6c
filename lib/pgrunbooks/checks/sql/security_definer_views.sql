-- security_definer_views: views in the exposed schemas (%(exposed_schemas)s) that run with their owner's
--   rights (not security_invoker, PostgreSQL 15+) and that anon or authenticated can select (splinter
--   0010), with the row-level-security tables they read and why the owner skips those tables' policies.
-- Privileges: none (catalogs only).
-- Caveats: the tables are read from the view's rewrite rule (pg_depend), one level deep; the owner
--   skips RLS when it is a superuser, has BYPASSRLS, or owns the table without FORCE ROW LEVEL SECURITY.
with api as (
  select (select r.oid from pg_catalog.pg_roles r where r.rolname = 'anon') as anon,
         (select r.oid from pg_catalog.pg_roles r where r.rolname = 'authenticated') as authenticated
)
select n.nspname::text as schema,
       c.relname::text as view,
       pg_catalog.format('%%I.%%I', n.nspname, c.relname) as name,
       o.rolname::text as owner,
       o.rolsuper as owner_superuser,
       o.rolbypassrls as owner_bypassrls,
       array_remove(array[
         case when pg_catalog.has_any_column_privilege(api.anon, c.oid, 'select') then 'anon' end,
         case when pg_catalog.has_any_column_privilege(api.authenticated, c.oid, 'select') then 'authenticated' end
       ], null) as api_select,
       coalesce(rls.tables, '{}') as rls_tables,
       coalesce(rls.bypassed, '{}') as bypassed_tables
from pg_catalog.pg_class c
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
join pg_catalog.pg_roles o on o.oid = c.relowner
cross join api
left join lateral (
  select array_agg(distinct t.oid::regclass::text) as tables,
         array_agg(distinct t.oid::regclass::text)
           filter (where o.rolsuper or o.rolbypassrls or (t.relowner = o.oid and not t.relforcerowsecurity))
           as bypassed
  from pg_catalog.pg_rewrite w
  join pg_catalog.pg_depend d on d.classid = 'pg_catalog.pg_rewrite'::regclass and d.objid = w.oid
                             and d.refclassid = 'pg_catalog.pg_class'::regclass
  join pg_catalog.pg_class t on t.oid = d.refobjid and t.oid <> c.oid
  where w.ev_class = c.oid and t.relkind in ('r', 'p') and t.relrowsecurity
) rls on true
where c.relkind = 'v'
  and n.nspname = any (%(exposed_schemas)s::text[])
  and not coalesce(c.reloptions && array['security_invoker=true', 'security_invoker=on',
                                         'security_invoker=1', 'security_invoker=yes'], false)
  and (pg_catalog.has_any_column_privilege(api.anon, c.oid, 'select')
       or pg_catalog.has_any_column_privilege(api.authenticated, c.oid, 'select'))
  and not exists (select 1 from pg_catalog.pg_depend e
                  where e.classid = 'pg_catalog.pg_class'::regclass and e.objid = c.oid and e.deptype = 'e')
order by name
