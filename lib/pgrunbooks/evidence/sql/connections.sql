-- connections: client backends by role, application and state, with the oldest state and transaction
--   ages, and the connection limits: usable = max_connections - superuser_reserved_connections -
--   reserved_connections (PostgreSQL 16+; 0 before).
-- Privileges: pg_monitor to see other roles' states (without it they show as null).
-- Caveats: includes this session (it holds a slot too).
select a.usename::text as role,
       coalesce(a.application_name, '') as application,
       coalesce(a.state, '') as state,
       count(*)::int as sessions,
       max(extract(epoch from pg_catalog.now() - a.state_change))::float8 as oldest_state_s,
       max(extract(epoch from pg_catalog.now() - a.xact_start))::float8 as oldest_xact_s,
       pg_catalog.current_setting('max_connections')::int as max_connections,
       pg_catalog.current_setting('superuser_reserved_connections')::int as superuser_reserved,
       coalesce(pg_catalog.current_setting('reserved_connections', true), '0')::int as reserved
from pg_catalog.pg_stat_activity a
where a.backend_type = 'client backend'
group by 1, 2, 3
order by sessions desc, role, application, state
