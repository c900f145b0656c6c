-- database_growth: the current database size against the latest public.db_metrics snapshot that is at
--   least %(min_age_hours)s hours old (metric_name = %(metric)s, metric_value in megabytes).
-- Privileges: SELECT on public.db_metrics (checked first; skipped otherwise).
-- Caveats: db_metrics (the guide's monitoring table) has no index on recorded_at, so the snapshot is
--   found by reading it; the check refuses (skipped, with the index to create) when the table holds
--   more than %(max_scan_rows)s rows and no index leads with metric_name or recorded_at.
with latest as (
  select m.metric_value::float8 * 1048576 as previous_bytes, m.recorded_at as previous_at
  from public.db_metrics m
  where m.metric_name = %(metric)s
    and m.recorded_at <= now() - make_interval(secs => %(min_age_hours)s * 3600)
  order by m.recorded_at desc
  limit 1
)
select pg_catalog.pg_database_size(current_database()) as bytes,
       l.previous_bytes,
       l.previous_at,
       extract(epoch from now() - l.previous_at)::float8 / 86400 as days_since
from (select 1) one
left join latest l on true
