-- dead_tuples probe: the table `table` has autovacuum off and dead tuples.
select coalesce('autovacuum_enabled=false' = any (c.reloptions), false) and coalesce(s.n_dead_tup, 0) > 0
from pg_catalog.pg_class c
left join pg_catalog.pg_stat_all_tables s on s.relid = c.oid
where c.oid = to_regclass(%(table)s)
