-- checkpoints: timed against requested checkpoints since the statistics reset (pg_stat_bgwriter, up to 16).
-- Privileges: none.
-- Caveats: requested checkpoints come from max_wal_size being reached, but also from CREATE DATABASE,
--   base backups and manual CHECKPOINT; cluster-wide. PostgreSQL 17 moved these counters to
--   pg_stat_checkpointer (checkpoints.pg17.sql).
select b.checkpoints_timed::bigint as timed,
       b.checkpoints_req::bigint as requested,
       (b.checkpoints_req::float8 / nullif(b.checkpoints_timed + b.checkpoints_req, 0)) as requested_share,
       b.checkpoint_write_time::float8 as write_ms,
       b.checkpoint_sync_time::float8 as sync_ms,
       b.buffers_checkpoint::bigint as buffers_written,
       b.stats_reset,
       extract(epoch from now() - b.stats_reset)::float8 as window_s,
       current_setting('max_wal_size') as max_wal_size,
       current_setting('checkpoint_timeout') as checkpoint_timeout
from pg_catalog.pg_stat_bgwriter b
