-- seq_scan_heavy_tables: tables of at least %(min_rows)s rows read mostly by sequential scans (share of
--   seq_scan among all scans), with how many rows those scans read on average.
-- Privileges: none.
-- Caveats: counters since statistics began; a nightly report legitimately scans a table in full; small
--   tables are cheaper to scan than to index and are left out.
select s.schemaname::text as schema,
       s.relname::text as table,
       pg_catalog.format('%%I.%%I', s.schemaname, s.relname) as name,
       s.seq_scan,
       coalesce(s.idx_scan, 0) as idx_scan,
       (s.seq_scan::float8 / nullif(s.seq_scan + coalesce(s.idx_scan, 0), 0)) as seq_share,
       s.seq_tup_read,
       (s.seq_tup_read::float8 / nullif(s.seq_scan, 0)) as rows_per_seq_scan,
       s.n_live_tup
from pg_catalog.pg_stat_user_tables s
where s.n_live_tup >= %(min_rows)s
  and s.seq_scan > 0
order by seq_share desc nulls last, s.seq_tup_read desc, name
