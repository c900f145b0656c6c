-- top_statements: the statements of this database that take the most total execution time, with calls,
--   rows, cache hit ratio and their share of the database's total time.
-- Privileges: pg_read_all_stats (pg_monitor) for other roles' query texts; extension pg_stat_statements.
-- Caveats: the share is of the time pg_stat_statements has recorded since its last reset (see
--   statements_reset_age); utility statements and pgrunbooks' own queries (marked /* pgrunbooks */ by every session) are left out of the ranking
--   but counted in the total. Times are in milliseconds.
with s as (
  select s.queryid, s.userid, s.calls, s.rows, s.shared_blks_hit, s.shared_blks_read, s.query,
         s.{total_exec_time}::float8 as total_ms,
         s.{mean_exec_time}::float8 as mean_ms,
         s.{blk_read_time}::float8 as io_read_ms
  from {pgss} s
  where s.dbid = (select d.oid from pg_catalog.pg_database d where d.datname = current_database())
),
total as (
  select coalesce(sum(s.total_ms), 0) as total_ms, coalesce(sum(s.calls), 0) as calls from s
)
select s.queryid::text as queryid,
       pg_catalog.pg_get_userbyid(s.userid)::text as username,
       s.calls,
       s.total_ms,
       s.mean_ms,
       s.rows,
       (s.shared_blks_hit::float8 / nullif(s.shared_blks_hit + s.shared_blks_read, 0)) as cache_hit,
       s.io_read_ms,
       (s.total_ms / nullif(t.total_ms, 0)) as share_of_time,
       (s.calls::float8 / nullif(t.calls, 0)) as share_of_calls,
       t.total_ms as database_total_ms,
       left(s.query, 2000) as query
from s cross join total t
where s.query is not null
  and s.query !~* '^\s*(vacuum|analyze|create|alter|drop|reindex|cluster|checkpoint|begin|start|commit|end|rollback|abort|savepoint|release|set|reset|show|discard|grant|revoke|comment|lock|refresh|do|explain|truncate|prepare|deallocate|listen|unlisten|notify|load|security|reassign)\M'
  and strpos(s.query, '/* pgrunbooks') = 0  -- our sessions' and checks' markers (pgrunbooks.db.QUERY_MARKER)
order by s.total_ms desc, s.queryid
limit %(limit)s
