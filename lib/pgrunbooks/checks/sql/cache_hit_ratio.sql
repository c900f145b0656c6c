-- cache_hit_ratio: share of table (heap) and index block reads served from shared_buffers, for the user
--   tables of this database, since statistics began.
-- Privileges: none.
-- Caveats: a "read" may still come from the OS page cache; right after a restart or a clone every read is
--   a miss, so nothing is judged below %(min_blocks)s block accesses.
select 'table' as kind,
       coalesce(sum(s.heap_blks_hit), 0)::bigint as hits,
       coalesce(sum(s.heap_blks_read), 0)::bigint as reads,
       (sum(s.heap_blks_hit)::float8 / nullif(sum(s.heap_blks_hit) + sum(s.heap_blks_read), 0)) as ratio
from pg_catalog.pg_statio_user_tables s
union all
select 'index',
       coalesce(sum(s.idx_blks_hit), 0)::bigint,
       coalesce(sum(s.idx_blks_read), 0)::bigint,
       (sum(s.idx_blks_hit)::float8 / nullif(sum(s.idx_blks_hit) + sum(s.idx_blks_read), 0))
from pg_catalog.pg_statio_user_tables s
order by kind desc
