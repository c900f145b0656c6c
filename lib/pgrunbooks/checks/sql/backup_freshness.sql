-- backup_freshness: WAL archiving from pg_stat_archiver: the last archived WAL segment and its age, the
--   last failure, and the segment being written now (the evaluator counts the segments still to archive).
-- Privileges: none (pg_stat_archiver and pg_current_wal_lsn() are readable by every role).
-- Caveats: counters restart with pg_stat_reset_shared('archiver') and after a crash; archive_mode off
--   means no archiver at all (the check is skipped); a managed platform (Supabase) may archive with its
--   own agent that this view does not show. The current segment is unknown on a standby.
select pg_catalog.current_setting('archive_mode') as archive_mode,
       s.archived_count,
       s.last_archived_wal,
       s.last_archived_time,
       extract(epoch from pg_catalog.now() - s.last_archived_time)::float8 as last_archived_age_s,
       s.failed_count,
       s.last_failed_wal,
       s.last_failed_time,
       coalesce(s.last_failed_time > s.last_archived_time, s.last_failed_time is not null) as failing,
       s.stats_reset,
       pg_catalog.pg_is_in_recovery() as in_recovery,
       case when not pg_catalog.pg_is_in_recovery()
            then pg_catalog.pg_walfile_name(pg_catalog.pg_current_wal_lsn()) end as current_wal,
       pg_catalog.pg_size_bytes(pg_catalog.current_setting('wal_segment_size')) as wal_segment_bytes
from pg_catalog.pg_stat_archiver s
