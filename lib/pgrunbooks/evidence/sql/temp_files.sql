-- temp_files: temporary files on disk right now (sorts and hashes that spilled), in the default
--   tablespace.
-- Privileges: pg_monitor (pg_ls_tmpdir is granted to it).
-- Caveats: only the default tablespace; the per-database cumulative counters are in database.sql.
select count(*)::int as files, coalesce(sum(t.size), 0)::bigint as bytes
from pg_catalog.pg_ls_tmpdir() t
