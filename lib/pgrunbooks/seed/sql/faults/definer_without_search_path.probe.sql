-- definer_without_search_path probe: `function`(uuid) is SECURITY DEFINER and sets no search_path.
select p.prosecdef
       and not exists (select 1 from unnest(coalesce(p.proconfig, array[]::text[])) cfg
                       where cfg like 'search_path=%%')
from pg_catalog.pg_proc p
where p.oid = to_regprocedure(%(function)s || '(uuid)')
