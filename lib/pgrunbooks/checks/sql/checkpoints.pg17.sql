-- checkpoints (PostgreSQL 17+): timed against requested checkpoints since the statistics reset, from
--   pg_stat_checkpointer (the counters left pg_stat_bgwriter in 17).
-- Privileges: none.
-- Caveats: requested checkpoints come from max_wal_size being reached, but also from CREATE DATABASE,
--   base backups and manual CHECKPOINT; cluster-wide.
select c.num_timed::bigint as timed,
       c.num_requested::bigint as requested,
       (c.num_requested::float8 / nullif(c.num_timed + c.num_requested, 0)) as requested_share,
       c.write_time::float8 as write_ms,
       c.sync_time::float8 as sync_ms,
       c.buffers_written::bigint as buffers_written,
       c.stats_reset,
       extract(epoch from now() - c.stats_reset)::float8 as window_s,
       current_setting('max_wal_size') as max_wal_size,
       current_setting('checkpoint_timeout') as checkpoint_timeout
from pg_catalog.pg_stat_checkpointer c
