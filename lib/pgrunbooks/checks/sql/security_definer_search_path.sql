-- security_definer_search_path: SECURITY DEFINER functions and procedures without a fixed search_path
--   (no "set search_path = …" in their definition), outside system and extension-owned objects and the
--   excluded (platform-managed) schemas.
-- Privileges: none.
-- Caveats: such a function runs with its owner's privileges but resolves names on the caller's
--   search_path: whoever can create an object earlier on that path runs code as the owner. Critical when
--   anon or authenticated may execute it. The name is the regprocedure text (schema-qualified and quoted
--   under the checks' search_path = pg_catalog), which alter function accepts as it is.
with api as (
  select (select r.oid from pg_catalog.pg_roles r where r.rolname = 'anon') as anon,
         (select r.oid from pg_catalog.pg_roles r where r.rolname = 'authenticated') as authenticated
)
select n.nspname::text as schema,
       p.oid::regprocedure::text as name,
       p.proname::text as function,
       pg_catalog.pg_get_userbyid(p.proowner)::text as owner,
       case p.prokind when 'p' then 'procedure' else 'function' end as kind,
       p.proconfig::text[] as config,
       array_remove(array[
         case when pg_catalog.has_function_privilege(api.anon, p.oid, 'execute') then 'anon' end,
         case when pg_catalog.has_function_privilege(api.authenticated, p.oid, 'execute') then 'authenticated' end
       ], null) as api_execute
from pg_catalog.pg_proc p
join pg_catalog.pg_namespace n on n.oid = p.pronamespace
cross join api
where p.prosecdef
  and n.nspname not in ('pg_catalog', 'information_schema')
  and n.nspname !~ '^pg_(toast|temp_)'
  and not (n.nspname = any (%(exclude_schemas)s::text[]))
  and not exists (select 1 from pg_catalog.pg_depend d
                  where d.classid = 'pg_catalog.pg_proc'::regclass and d.objid = p.oid and d.deptype = 'e')
  and not exists (select 1 from unnest(coalesce(p.proconfig, '{}'::text[])) cfg where cfg like 'search\_path=%%')
order by name
