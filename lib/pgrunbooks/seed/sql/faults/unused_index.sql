-- unused_index: an index that no query uses, on the biggest table.
-- Plants: index index on public.calls (to_number), non-unique, backing no constraint; settle
--   never scans it, so pg_stat_user_indexes.idx_scan stays 0.
-- Found by: unused_indexes.
-- Identifiers: index (in the table's schema).

create index {index} on public.calls (to_number);
