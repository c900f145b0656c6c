-- definer_api_execute: SECURITY DEFINER functions in the exposed schemas (%(exposed_schemas)s) that anon
--   or authenticated may execute (directly or through PUBLIC), i.e. call through the Data API's /rpc;
--   with what they return (a table's rows: the relation, its row level security and whether it is a
--   tenant table, one with a %(tenant_column)s column) and the policies that call them.
-- Privileges: none.
-- Caveats: a definer function runs as its owner (often postgres, which bypasses RLS): what it returns
--   is what its owner can read, whatever the caller's policies say. Functions returning records or
--   json built from tables are graded by their declared type only.
with api as (
  select (select r.oid from pg_catalog.pg_roles r where r.rolname = 'anon') as anon,
         (select r.oid from pg_catalog.pg_roles r where r.rolname = 'authenticated') as authenticated
)
select n.nspname::text as schema,
       p.oid::regprocedure::text as name,
       p.proname::text as function,
       pg_catalog.pg_get_userbyid(p.proowner)::text as owner,
       case p.prokind when 'p' then 'procedure' else 'function' end as kind,
       pg_catalog.format_type(p.prorettype, null) as returns,
       p.proretset as returns_set,
       case when c.oid is not null then pg_catalog.format('%%I.%%I', cn.nspname, c.relname) end as returns_table,
       coalesce(c.relrowsecurity, false) as returns_rls_table,
       coalesce(exists (select 1 from pg_catalog.pg_attribute a
                        where a.attrelid = c.oid and a.attname = %(tenant_column)s and a.attnum > 0
                          and not a.attisdropped), false) as returns_tenant_table,
       array_remove(array[
         case when pg_catalog.has_function_privilege(api.anon, p.oid, 'execute') then 'anon' end,
         case when pg_catalog.has_function_privilege(api.authenticated, p.oid, 'execute') then 'authenticated' end
       ], null) as api_execute,
       coalesce((select array_agg(pg_catalog.format('%%I on %%s', pol.polname, pol.polrelid::regclass::text)
                                  order by 1)
                 from pg_catalog.pg_depend d
                 join pg_catalog.pg_policy pol on pol.oid = d.objid
                 where d.classid = 'pg_catalog.pg_policy'::regclass and d.refclassid = 'pg_catalog.pg_proc'::regclass
                   and d.refobjid = p.oid), '{}') as used_by_policies
from pg_catalog.pg_proc p
join pg_catalog.pg_namespace n on n.oid = p.pronamespace
left join pg_catalog.pg_type ty on ty.oid = p.prorettype
left join pg_catalog.pg_class c on c.oid = ty.typrelid and c.relkind in ('r', 'p', 'v', 'm', 'f')
left join pg_catalog.pg_namespace cn on cn.oid = c.relnamespace
cross join api
where p.prosecdef
  and n.nspname = any (%(exposed_schemas)s::text[])
  and not exists (select 1 from pg_catalog.pg_depend d
                  where d.classid = 'pg_catalog.pg_proc'::regclass and d.objid = p.oid and d.deptype = 'e')
  and (pg_catalog.has_function_privilege(api.anon, p.oid, 'execute')
       or pg_catalog.has_function_privilege(api.authenticated, p.oid, 'execute'))
order by name
