-- invalid_indexes: indexes marked invalid (a failed or interrupted CREATE INDEX CONCURRENTLY / REINDEX
--   CONCURRENTLY): maintained on every write, never used by queries.
-- Privileges: none (pg_read_all_stats to see who is building one right now).
-- Caveats: an index being built concurrently right now is invalid too; those are reported as info with the
--   building pid (pg_stat_progress_create_index).
select n.nspname::text as schema,
       t.relname::text as table,
       pg_catalog.format('%%I.%%I', n.nspname, ic.relname) as name,
       i.indisvalid, i.indisready, i.indisunique,
       ic.relpages::bigint * current_setting('block_size')::int as bytes,
       pg_catalog.pg_get_indexdef(i.indexrelid) as definition,
       (select p.pid from pg_catalog.pg_stat_progress_create_index p
        where p.index_relid = i.indexrelid or (p.relid = i.indrelid and p.index_relid = 0)
        limit 1) as building_pid
from pg_catalog.pg_index i
join pg_catalog.pg_class ic on ic.oid = i.indexrelid
join pg_catalog.pg_class t on t.oid = i.indrelid
join pg_catalog.pg_namespace n on n.oid = t.relnamespace
where (not i.indisvalid or not i.indisready)
  and n.nspname not in ('pg_catalog', 'information_schema')
  and n.nspname !~ '^pg_temp_'
order by name
