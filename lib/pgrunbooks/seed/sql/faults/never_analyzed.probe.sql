-- never_analyzed probe: the table `table` holds data and has never been analyzed (by hand or by autovacuum).
select pg_catalog.pg_relation_size(c.oid) > 0
       and coalesce(s.last_analyze is null and s.last_autoanalyze is null, true)
from pg_catalog.pg_class c
left join pg_catalog.pg_stat_all_tables s on s.relid = c.oid
where c.oid = to_regclass(%(table)s)
