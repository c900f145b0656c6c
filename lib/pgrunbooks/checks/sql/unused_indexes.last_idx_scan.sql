-- unused_indexes, PostgreSQL 15: pg_stat_user_indexes has no last_idx_scan yet.
null::timestamptz
