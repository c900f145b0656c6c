-- table_bloat: estimated wasted space per table: pages on disk (pg_class.relpages) against the pages its
--   live rows would need, from planner statistics (pg_stats: average width and null fraction per column,
--   tuple and page headers, fillfactor).
-- Privileges: pg_stats shows a table's statistics only to roles that may SELECT its columns and are not
--   subject to its row level security (owner, BYPASSRLS, superuser); other tables get no estimate.
-- Caveats: an estimate (alignment padding is ignored, so small tables read a little bloated); relpages and
--   reltuples are as of the last vacuum/analyze. With pgstattuple installed, flagged tables are measured
--   exactly (pgstattuple_approx) up to %(max_exact_bytes)s bytes. Reads no table data.
with cols as (
  select c.oid,
         count(*) as ncols,
         count(s.attname) as nstats,
         coalesce(sum((1 - s.null_frac) * s.avg_width), 0)::float8 as data_width,
         coalesce(bool_or(s.null_frac > 0), false) as has_nulls
  from pg_catalog.pg_class c
  join pg_catalog.pg_namespace n on n.oid = c.relnamespace
  join pg_catalog.pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
  left join pg_catalog.pg_stats s
    on s.schemaname = n.nspname and s.tablename = c.relname and s.attname = a.attname and not s.inherited
  where c.relkind in ('r', 'm')
    and c.relam = (select am.oid from pg_catalog.pg_am am where am.amname = 'heap')
    and c.relpages > 0
    and n.nspname not in ('pg_catalog', 'information_schema')
    and n.nspname !~ '^pg_(toast|temp_)'
  group by c.oid
),
est as (
  select c.oid, c.oid as table_oid, n.nspname, c.relname, c.relpages, c.reltuples, k.ncols, k.nstats,
         current_setting('block_size')::int as bs,
         coalesce((select split_part(o, '=', 2)::int from unnest(c.reloptions) o where o like 'fillfactor=%%'), 100)
           as fillfactor,
         -- tuple: header (23 bytes + null bitmap), MAXALIGNed, data MAXALIGNed, plus its 4-byte line pointer
         (ceil((23 + case when k.has_nulls then ceil(k.ncols / 8.0) else 0 end) / 8.0) * 8
          + ceil(k.data_width / 8.0) * 8 + 4) as tuple_bytes
  from cols k
  join pg_catalog.pg_class c on c.oid = k.oid
  join pg_catalog.pg_namespace n on n.oid = c.relnamespace
)
select e.oid::bigint as oid,
       e.nspname::text as schema,
       e.relname::text as table,
       pg_catalog.format('%%I.%%I', e.nspname, e.relname) as name,
       e.relpages::bigint as pages,
       e.relpages::bigint * e.bs as bytes,
       greatest(e.reltuples, 0)::bigint as rows_estimate,
       e.nstats = e.ncols as has_statistics,
       -- pg_stats hides a table's statistics from roles that may not read it or are subject to its RLS
       not pg_catalog.has_table_privilege(e.table_oid, 'select')
         or coalesce(pg_catalog.row_security_active(e.table_oid), false) as statistics_hidden,
       e.fillfactor,
       case when e.nstats = e.ncols then
         ceil(greatest(e.reltuples, 0) * e.tuple_bytes / ((e.bs - 24) * e.fillfactor / 100.0))::bigint
       end as expected_pages
from est e
order by e.relpages desc, name
