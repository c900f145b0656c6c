-- slow_statements: statements of this database whose mean execution time is the highest
--   (at least %(min_calls)s calls), with their timing, rows and cache hits.
-- Privileges: pg_read_all_stats (pg_monitor) to see other roles' query texts; extension pg_stat_statements
--   (any schema: the view is looked up in pg_extension).
-- Caveats: column names differ by pg_stat_statements version (mean_time before 1.8, blk_read_time before
--   1.11): the column placeholders in braces are filled from the view's actual columns. Utility statements (vacuum, DDL,
--   transaction control) and pgrunbooks' own queries (marked /* pgrunbooks */ by every session) are left out. Times are in milliseconds.
select s.queryid::text as queryid,
       pg_catalog.pg_get_userbyid(s.userid)::text as username,
       s.calls,
       s.{mean_exec_time}::float8 as mean_ms,
       s.{max_exec_time}::float8 as max_ms,
       s.{stddev_exec_time}::float8 as stddev_ms,
       s.{total_exec_time}::float8 as total_ms,
       s.rows,
       (s.rows::float8 / nullif(s.calls, 0)) as rows_per_call,
       (s.shared_blks_hit::float8 / nullif(s.shared_blks_hit + s.shared_blks_read, 0)) as cache_hit,
       s.{blk_read_time}::float8 as io_read_ms,
       s.temp_blks_written,
       left(s.query, 2000) as query
from {pgss} s
where s.dbid = (select d.oid from pg_catalog.pg_database d where d.datname = current_database())
  and s.calls >= %(min_calls)s
  and s.query is not null
  and s.query !~* '^\s*(vacuum|analyze|create|alter|drop|reindex|cluster|checkpoint|begin|start|commit|end|rollback|abort|savepoint|release|set|reset|show|discard|grant|revoke|comment|lock|refresh|do|explain|truncate|prepare|deallocate|listen|unlisten|notify|load|security|reassign)\M'
  and strpos(s.query, '/* pgrunbooks') = 0  -- our sessions' and checks' markers (pgrunbooks.db.QUERY_MARKER)
order by s.{mean_exec_time} desc, s.queryid
limit %(limit)s
