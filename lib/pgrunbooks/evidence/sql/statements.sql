-- statements: pg_stat_statements totals per query id in this database (snapshot; the evidence keeps the
--   difference between the snapshots before and after the window). {pgss} is the view, composed with
--   psycopg.sql.Identifier in the extension's schema.
-- Privileges: pg_read_all_stats (in pg_monitor) for other roles' texts, and USAGE on the extension's
--   schema (Supabase: `extensions`).
-- Caveats: pgrunbooks' own statements (marked with a trailing comment) and transaction control
--   (BEGIN, COMMIT… every client's, ours included: never a cause of load) are left out; a statement
--   evicted from pg_stat_statements between the snapshots is missing from the deltas.
select s.queryid,
       sum(s.calls)::bigint as calls,
       sum(s.total_exec_time)::float8 as total_ms,
       sum(s.rows)::bigint as rows,
       sum(s.temp_blks_written)::bigint as temp_blks_written,
       sum(s.shared_blks_read)::bigint as shared_blks_read,
       sum(s.shared_blks_hit)::bigint as shared_blks_hit,
       min(pg_catalog.left(s.query, 1000)) as query
from {pgss} s
where s.dbid = (select d.oid from pg_catalog.pg_database d where d.datname = pg_catalog.current_database())
  and s.queryid is not null
  and pg_catalog.strpos(s.query, %(marker)s) = 0
  and s.query !~* '^\s*(begin|commit|rollback|end|abort|start transaction|savepoint|release)\y'
group by s.queryid
order by s.queryid
