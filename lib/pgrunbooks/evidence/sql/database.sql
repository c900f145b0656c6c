-- database: this database's pg_stat_database counters (snapshot; the evidence keeps the deltas).
-- Privileges: none.
-- Caveats: backends flush their counters at most once a second, so a window shorter than ~2 s
--   under-counts.
select d.xact_commit::bigint as xact_commit,
       d.xact_rollback::bigint as xact_rollback,
       d.blks_read::bigint as blks_read,
       d.blks_hit::bigint as blks_hit,
       d.tup_returned::bigint as tup_returned,
       d.tup_fetched::bigint as tup_fetched,
       d.tup_inserted::bigint as tup_inserted,
       d.tup_updated::bigint as tup_updated,
       d.tup_deleted::bigint as tup_deleted,
       d.temp_files::bigint as temp_files,
       d.temp_bytes::bigint as temp_bytes,
       d.deadlocks::bigint as deadlocks,
       d.blk_read_time::float8 as blk_read_time_ms,
       d.blk_write_time::float8 as blk_write_time_ms
from pg_catalog.pg_stat_database d
where d.datname = pg_catalog.current_database()
