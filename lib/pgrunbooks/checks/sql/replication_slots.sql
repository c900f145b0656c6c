-- replication_slots: every replication slot of the cluster, whether a consumer is connected, and the WAL
--   it keeps on disk: retained_bytes is the distance from the slot's restart_lsn to the current WAL
--   position (the receive position on a standby), wal_status and safe_wal_size as the server reports
--   them (safe_wal_size is null when max_slot_wal_keep_size is -1: no limit).
-- Privileges: none (pg_replication_slots and pg_current_wal_lsn() are readable by every role; works as
--   pg_monitor).
-- Caveats: a slot without a restart_lsn reserves nothing yet. Logical slots also hold back the catalog
--   xmin (catalog_xmin), which stops vacuum on the catalogs; the retained WAL is what fills a disk.
with position as (
  select case when pg_catalog.pg_is_in_recovery() then pg_catalog.pg_last_wal_receive_lsn()
              else pg_catalog.pg_current_wal_lsn() end as lsn
)
select s.slot_name::text as slot,
       s.slot_type::text as slot_type,
       s.plugin::text as plugin,
       s.database::text as database,
       s.temporary,
       s.active,
       s.active_pid,
       s.wal_status::text as wal_status,
       s.safe_wal_size::bigint as safe_wal_size,
       s.restart_lsn::text as restart_lsn,
       pg_catalog.pg_wal_lsn_diff(position.lsn, s.restart_lsn)::bigint as retained_bytes,
       pg_catalog.current_setting('max_slot_wal_keep_size') as max_slot_wal_keep_size
from pg_catalog.pg_replication_slots s
cross join position
order by retained_bytes desc nulls last, slot
