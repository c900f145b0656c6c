-- table_sizes: the largest tables (and materialized views) with heap, TOAST and index sizes and
--   estimated rows; the top %(limit)s by total size.
-- Privileges: none (size functions need no table privilege).
-- Caveats: relations locked (or queued for) ACCESS EXCLUSIVE by another session are measured from
--   pg_class.relpages (estimated = true) so the check never waits behind DDL. Rows are the planner's
--   estimate (pg_class.reltuples, -1 when never vacuumed or analyzed).
with locked as (
  select distinct l.relation
  from pg_catalog.pg_locks l
  where l.locktype = 'relation' and l.mode = 'AccessExclusiveLock'
    and l.database = (select d.oid from pg_catalog.pg_database d where d.datname = current_database())
),
rel as (
  select c.oid, n.nspname, c.relname, c.relkind, c.relpages, c.reltuples, c.reltoastrelid,
         c.oid in (select relation from locked) as is_locked
  from pg_catalog.pg_class c
  join pg_catalog.pg_namespace n on n.oid = c.relnamespace
  where c.relkind in ('r', 'm')
    and n.nspname not in ('pg_catalog', 'information_schema')
    and n.nspname !~ '^pg_(toast|temp_)'
),
sized as (
  select r.*,
         case when r.is_locked then r.relpages::bigint * current_setting('block_size')::int
              else pg_catalog.pg_relation_size(r.oid) end as heap_bytes,
         coalesce((select case when r.is_locked or t.oid in (select relation from locked)
                               then t.relpages::bigint * current_setting('block_size')::int
                               else pg_catalog.pg_total_relation_size(t.oid) end
                   from pg_catalog.pg_class t where t.oid = r.reltoastrelid), 0) as toast_bytes,
         coalesce((select sum(case when r.is_locked or i.indexrelid in (select relation from locked)
                                   then ic.relpages::bigint * current_setting('block_size')::int
                                   else pg_catalog.pg_relation_size(i.indexrelid) end)
                   from pg_catalog.pg_index i
                   join pg_catalog.pg_class ic on ic.oid = i.indexrelid
                   where i.indrelid = r.oid), 0)::bigint as index_bytes,
         (select count(*) from pg_catalog.pg_index i where i.indrelid = r.oid)::int as indexes
  from rel r
)
select s.nspname::text as schema,
       s.relname::text as table,
       pg_catalog.format('%%I.%%I', s.nspname, s.relname) as name,
       case s.relkind when 'm' then 'materialized view' else 'table' end as kind,
       s.reltuples::bigint as rows_estimate,
       s.heap_bytes,
       s.toast_bytes,
       s.index_bytes,
       s.heap_bytes + s.toast_bytes + s.index_bytes as total_bytes,
       s.indexes,
       s.is_locked as estimated
from sized s
order by total_bytes desc, schema, s.relname
limit %(limit)s
