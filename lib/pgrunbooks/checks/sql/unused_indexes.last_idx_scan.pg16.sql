-- unused_indexes, PostgreSQL 16+: when the index was last scanned.
s.last_idx_scan
