-- dead_tuples: dead-tuple ratio per table (dead / (live + dead)) with the last (auto)vacuum and whether
--   autovacuum is disabled on the table; tables with at least %(min_dead_tuples)s dead tuples first.
-- Privileges: none (pg_stat_user_tables is readable by every role).
-- Caveats: n_live_tup / n_dead_tup are estimates maintained by the statistics system and reset with
--   it (pg_stat_reset, crash recovery); a fresh clone of a database starts at zero.
select s.schemaname::text as schema,
       s.relname::text as table,
       pg_catalog.format('%%I.%%I', s.schemaname, s.relname) as name,
       s.n_live_tup,
       s.n_dead_tup,
       (s.n_dead_tup::float8 / nullif(s.n_live_tup + s.n_dead_tup, 0)) as dead_ratio,
       greatest(s.last_vacuum, s.last_autovacuum) as last_vacuum,
       s.autovacuum_count,
       s.vacuum_count,
       coalesce('autovacuum_enabled=false' = any (c.reloptions), false) as autovacuum_disabled,
       c.reloptions::text[] as reloptions
from pg_catalog.pg_stat_user_tables s
join pg_catalog.pg_class c on c.oid = s.relid
where s.n_live_tup + s.n_dead_tup > 0
order by (s.n_dead_tup >= %(min_dead_tuples)s) desc, dead_ratio desc nulls last, s.n_dead_tup desc, name
