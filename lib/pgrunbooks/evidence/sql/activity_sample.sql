-- activity_sample: one sample of every backend but our own, for the evidence window (taken ~50 times a
--   second, each in its own read-only transaction: pg_stat_activity is a snapshot per transaction).
-- Privileges: pg_monitor (pg_read_all_stats) to see other roles' query texts and wait events; any role
--   sees the rows.
-- Caveats: query_id needs compute_query_id (on with pg_stat_statements loaded); the query text is cut at
--   500 characters (the evidence keeps one text per session, not per sample).
select a.pid,
       a.backend_type,
       a.state,
       a.wait_event_type,
       a.wait_event,
       a.query_id,
       a.usename::text as role,
       a.application_name as application,
       a.datname::text as database,
       extract(epoch from pg_catalog.now() - a.xact_start)::float8 as xact_age_s,
       extract(epoch from pg_catalog.now() - a.query_start)::float8 as query_age_s,
       extract(epoch from pg_catalog.now() - a.backend_start)::float8 as backend_age_s,
       a.query_start,
       pg_catalog.left(a.query, 500) as query
from pg_catalog.pg_stat_activity a
where a.pid <> pg_catalog.pg_backend_pid()
order by a.pid
