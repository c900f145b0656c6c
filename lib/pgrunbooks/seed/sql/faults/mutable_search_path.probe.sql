-- mutable_search_path probe: the function exists and sets no search_path.
select exists (
  select 1 from pg_catalog.pg_proc p
  where p.oid = pg_catalog.to_regprocedure(%(function)s || '(uuid)')
    and not exists (select 1 from unnest(coalesce(p.proconfig, array[]::text[])) c where c like 'search\_path=%%'))
