-- archiver: whether WAL archiving is on and failing (pg_stat_archiver).
-- Privileges: pg_monitor (pg_read_all_settings for archive_command).
-- Caveats: a failing archive_command keeps every unarchived segment in pg_wal.
select pg_catalog.current_setting('archive_mode') as archive_mode,
       pg_catalog.current_setting('archive_command') as archive_command,
       coalesce(pg_catalog.current_setting('archive_library', true), '') as archive_library,
       a.archived_count::bigint as archived_count,
       a.last_archived_wal,
       a.last_archived_time,
       a.failed_count::bigint as failed_count,
       a.last_failed_wal,
       a.last_failed_time,
       (a.last_failed_time is not null
        and (a.last_archived_time is null or a.last_failed_time > a.last_archived_time)) as failing
from pg_catalog.pg_stat_archiver a
