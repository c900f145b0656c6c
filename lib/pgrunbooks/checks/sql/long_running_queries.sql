-- long_running_queries: client sessions whose current statement has run longer than %(warning)s seconds.
-- Privileges: pg_read_all_stats (pg_monitor) to see other roles' queries.
-- Caveats: measured on now() - query_start of active sessions (not of idle ones, whose query_start
--   is their last statement); skips this session and our own (application_name 'pgrunbooks/%%').
select a.pid,
       a.usename as username,
       a.application_name as application,
       a.datname as database,
       host(a.client_addr) as client_addr,
       a.state,
       extract(epoch from now() - a.query_start)::float8 as duration_s,
       extract(epoch from now() - a.xact_start)::float8 as transaction_s,
       a.wait_event_type,
       a.wait_event,
       left(a.query, 2000) as query
from pg_catalog.pg_stat_activity a
where a.backend_type = 'client backend'
  and a.state in ('active', 'fastpath function call')
  and a.pid <> pg_catalog.pg_backend_pid()
  and not (coalesce(a.application_name, '') like any (%(exclude_applications)s::text[]))
  and a.query_start <= now() - make_interval(secs => %(warning)s)
order by duration_s desc, a.pid
