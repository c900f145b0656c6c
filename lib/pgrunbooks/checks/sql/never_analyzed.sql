-- never_analyzed: tables holding data that have never been analyzed: no planner statistics at all.
-- Privileges: none.
-- Caveats: two signals, either suffices: the catalog (reltuples = -1: never vacuumed nor analyzed, and the
--   heap is not empty) and the statistics views (no last_analyze/last_autoanalyze while n_live_tup >=
--   %(min_rows)s). The heap size is read with pg_relation_size (ACCESS SHARE) except for relations locked
--   ACCESS EXCLUSIVE by someone else, which are skipped rather than waited for.
with locked as (
  select distinct l.relation
  from pg_catalog.pg_locks l
  where l.locktype = 'relation' and l.mode = 'AccessExclusiveLock'
    and l.database = (select d.oid from pg_catalog.pg_database d where d.datname = current_database())
)
select s.schemaname::text as schema,
       s.relname::text as table,
       pg_catalog.format('%%I.%%I', s.schemaname, s.relname) as name,
       s.n_live_tup,
       c.reltuples,
       case when c.oid in (select relation from locked) then null
            else pg_catalog.pg_relation_size(c.oid) end as heap_bytes,
       s.last_vacuum, s.last_autovacuum,
       coalesce('autovacuum_enabled=false' = any (c.reloptions), false) as autovacuum_disabled
from pg_catalog.pg_stat_user_tables s
join pg_catalog.pg_class c on c.oid = s.relid
where c.relkind in ('r', 'm')
  and s.last_analyze is null and s.last_autoanalyze is null
  and (s.n_live_tup >= greatest(%(min_rows)s, 1)
       or (c.reltuples < 0 and c.oid not in (select relation from locked)
           and pg_catalog.pg_relation_size(c.oid) > 0))
order by s.n_live_tup desc, name
