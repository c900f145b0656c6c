-- index_bloat: estimated wasted space per btree index: pages on disk against the leaf pages its entries
--   would need (index tuple header, key widths from pg_stats, line pointers, btree page overhead, leaf
--   fillfactor 90 unless set), plus the metapage.
-- Privileges: like table_bloat: the table's (or, for expression indexes, the index's) statistics must be
--   visible in pg_stats to this role.
-- Caveats: an estimate: deduplication (PostgreSQL 13+) makes indexes on repetitive keys smaller than this
--   model, so their bloat is under-reported, never invented; internal pages are ignored. With pgstattuple,
--   flagged indexes are measured with pgstatindex() up to %(max_exact_bytes)s bytes. Reads no index pages.
with cols as (
  select i.indexrelid,
         count(*) as ncols,
         count(s.attname) as nstats,
         coalesce(sum((1 - s.null_frac) * s.avg_width), 0)::float8 as data_width,
         coalesce(bool_or(s.null_frac > 0), false) as has_nulls
  from pg_catalog.pg_index i
  join pg_catalog.pg_class ic on ic.oid = i.indexrelid
  join pg_catalog.pg_class t on t.oid = i.indrelid
  join pg_catalog.pg_namespace n on n.oid = t.relnamespace
  join pg_catalog.pg_attribute ia on ia.attrelid = i.indexrelid and ia.attnum > 0
  left join pg_catalog.pg_attribute ta on ta.attrelid = i.indrelid and ta.attnum = i.indkey[ia.attnum - 1]
  left join pg_catalog.pg_stats s
    on s.schemaname = n.nspname and not s.inherited
   and ((i.indkey[ia.attnum - 1] <> 0 and s.tablename = t.relname and s.attname = ta.attname)
        or (i.indkey[ia.attnum - 1] = 0 and s.tablename = ic.relname and s.attname = ia.attname))
  where ic.relam = (select am.oid from pg_catalog.pg_am am where am.amname = 'btree')
    and i.indisvalid
    and ic.relpages > 1
    and n.nspname not in ('pg_catalog', 'information_schema')
    and n.nspname !~ '^pg_(toast|temp_)'
  group by i.indexrelid
),
est as (
  select ic.oid, t.oid as table_oid, n.nspname, t.relname as table_name, ic.relname, ic.relpages, ic.reltuples, k.ncols, k.nstats,
         current_setting('block_size')::int as bs,
         coalesce((select split_part(o, '=', 2)::int from unnest(ic.reloptions) o where o like 'fillfactor=%%'), 90)
           as fillfactor,
         -- index tuple: 8-byte header (16 with a null bitmap) + keys, MAXALIGNed, plus a 4-byte line pointer
         (ceil(((case when k.has_nulls then 16 else 8 end) + k.data_width) / 8.0) * 8 + 4) as tuple_bytes
  from cols k
  join pg_catalog.pg_index i on i.indexrelid = k.indexrelid
  join pg_catalog.pg_class ic on ic.oid = i.indexrelid
  join pg_catalog.pg_class t on t.oid = i.indrelid
  join pg_catalog.pg_namespace n on n.oid = t.relnamespace
)
select e.oid::bigint as oid,
       e.nspname::text as schema,
       e.table_name::text as table,
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
         (1 + ceil(greatest(e.reltuples, 0) * e.tuple_bytes / ((e.bs - 24 - 16) * e.fillfactor / 100.0)))::bigint
       end as expected_pages
from est e
order by e.relpages desc, name
