-- function_search_path: functions and procedures in the exposed schemas (%(exposed_schemas)s) that are not
--   SECURITY DEFINER (those are security_definer_search_path's) and have no fixed search_path (no
--   "set search_path = …" in their definition), outside extension-owned objects.
-- Privileges: none.
-- Caveats: such a function resolves unqualified names on whatever search_path its caller has: the same
--   call can read another schema's table, or an object someone created earlier on the path. Called from
--   a SECURITY DEFINER function or a policy it runs with that one's rights. The name is the regprocedure
--   text, which alter function accepts as it is.
with api as (
  select (select r.oid from pg_catalog.pg_roles r where r.rolname = 'anon') as anon,
         (select r.oid from pg_catalog.pg_roles r where r.rolname = 'authenticated') as authenticated
)
select n.nspname::text as schema,
       p.oid::regprocedure::text as name,
       p.proname::text as function,
       pg_catalog.pg_get_userbyid(p.proowner)::text as owner,
       case p.prokind when 'p' then 'procedure' else 'function' end as kind,
       l.lanname::text as language,
       array_remove(array[
         case when pg_catalog.has_function_privilege(api.anon, p.oid, 'execute') then 'anon' end,
         case when pg_catalog.has_function_privilege(api.authenticated, p.oid, 'execute') then 'authenticated' end
       ], null) as api_execute
from pg_catalog.pg_proc p
join pg_catalog.pg_namespace n on n.oid = p.pronamespace
join pg_catalog.pg_language l on l.oid = p.prolang
cross join api
where n.nspname = any (%(exposed_schemas)s::text[])
  and not p.prosecdef
  and p.prokind in ('f', 'p')
  and l.lanname <> 'c' and l.lanname <> 'internal'
  and not exists (select 1 from pg_catalog.pg_depend d
                  where d.classid = 'pg_catalog.pg_proc'::regclass and d.objid = p.oid and d.deptype = 'e')
  and not exists (select 1 from unnest(coalesce(p.proconfig, '{}'::text[])) cfg where cfg like 'search\_path=%%')
order by name
