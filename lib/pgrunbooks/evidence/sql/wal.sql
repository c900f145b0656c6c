-- wal: the size of pg_wal (files in the WAL directory) and the settings that bound it.
-- Privileges: pg_monitor (pg_ls_waldir is granted to it).
-- Caveats: counts every file in pg_wal, including ones kept for a slot or wal_keep_size.
select count(*)::int as files,
       coalesce(sum(w.size), 0)::bigint as bytes,
       pg_catalog.current_setting('max_wal_size') as max_wal_size,
       pg_catalog.pg_size_bytes(pg_catalog.current_setting('max_wal_size'))::bigint as max_wal_bytes,
       pg_catalog.current_setting('wal_keep_size') as wal_keep_size,
       pg_catalog.current_setting('max_slot_wal_keep_size') as max_slot_wal_keep_size
from pg_catalog.pg_ls_waldir() w
