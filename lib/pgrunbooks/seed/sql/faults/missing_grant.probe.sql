-- missing_grant probe: authenticated holds no SELECT on public.recordings.
select not pg_catalog.has_table_privilege('authenticated', 'public.recordings', 'select')
