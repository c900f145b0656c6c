-- dead_tuples: autovacuum switched off on a table during an incident and never switched back on;
--   then a backfill rewrote most of its rows.
-- Plants: the table `table` (public.db_metrics) with autovacuum_enabled = false and the rows whose id is not a multiple of
--   `keep_every` updated once: at scale 1, 40,000 live and 36,000 dead tuples.
--   The fault's hook first repacks the table with free space (a page that fills up is pruned by
--   its next reader, which removes dead tuples without any vacuum and would hide the fault).
-- Found by: dead_tuples.
-- Identifiers: table. Values: keep_every (rows whose id is a multiple of it are not updated).

alter table {table} set (autovacuum_enabled = false);

update {table} set metric_value = metric_value where id %% %(keep_every)s <> 0;

-- ANALYZE subtracts this backend's not yet flushed dead-tuple counts from its estimate: flush
-- them as soon as this transaction ends, so a later ANALYZE reports the dead rows.
select pg_catalog.pg_stat_force_next_flush();
