-- connections: client connections against max_connections, grouped by database, state, user and application.
-- Privileges: pg_read_all_stats (pg_monitor) to see the state of other roles' sessions.
-- Caveats: client backends only (autovacuum, walsenders and background workers have their own slots);
--   the usable limit is max_connections minus superuser_reserved_connections (and, on 16+,
--   reserved_connections); a pooler in front (Supavisor, PgBouncer) multiplexes many clients per backend.
with limits as (
  select current_setting('max_connections')::int as max_connections,
         current_setting('superuser_reserved_connections')::int as superuser_reserved,
         coalesce(nullif(current_setting('reserved_connections', true), '')::int, 0) as reserved
)
select coalesce(a.datname, '') as database,
       coalesce(a.state, 'unknown') as state,
       coalesce(a.usename, '') as username,
       coalesce(a.application_name, '') as application,
       count(*)::int as connections,
       max(extract(epoch from now() - a.state_change))::float8 as longest_in_state_s,
       l.max_connections,
       l.max_connections - l.superuser_reserved - l.reserved as usable_connections
from pg_catalog.pg_stat_activity a
cross join limits l
where a.backend_type = 'client backend'
group by 1, 2, 3, 4, l.max_connections, l.superuser_reserved, l.reserved
order by connections desc, database, state, username, application
