-- Per database: the `extensions` schema and pg_stat_statements, as on Supabase.
-- The server must preload it (shared_preload_libraries = 'pg_stat_statements')
-- for the view to return rows. pgstattuple is deliberately not installed here.

create schema if not exists extensions;
grant usage on schema extensions to postgres, anon, authenticated, service_role;

create extension if not exists pg_stat_statements with schema extensions;

-- The function's argument list differs between versions (1.11 added
-- minmax_only); the name alone is unambiguous.
grant execute on function extensions.pg_stat_statements_reset to postgres;
