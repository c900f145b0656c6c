-- database_size: the size of every database this role may measure, the current one flagged.
-- Privileges: CONNECT on the database, or pg_read_all_stats (pg_monitor) for the others.
-- Caveats: pg_database_size() walks the database's directory (no table locks); databases that do not
--   allow connections (template0) are left out.
select d.datname::text as database,
       pg_catalog.pg_database_size(d.oid) as bytes,
       d.datname = current_database() as current
from pg_catalog.pg_database d
where d.datallowconn
  and (pg_catalog.has_database_privilege(d.oid, 'connect')
       or pg_catalog.pg_has_role(current_user, 'pg_read_all_stats', 'usage'))
order by bytes desc, d.datname
