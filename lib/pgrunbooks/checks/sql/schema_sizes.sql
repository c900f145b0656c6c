-- schema_sizes: disk used per schema (tables with their TOAST and indexes, materialized views).
-- Privileges: none (size functions need no table privilege).
-- Caveats: size functions take an ACCESS SHARE lock; relations another session has locked (or queued
--   to lock) in ACCESS EXCLUSIVE mode are measured from pg_class.relpages instead, so a check never
--   waits behind DDL; those are counted in estimated_relations.
with locked as (
  select distinct l.relation
  from pg_catalog.pg_locks l
  where l.locktype = 'relation' and l.mode = 'AccessExclusiveLock'
    and l.database = (select d.oid from pg_catalog.pg_database d where d.datname = current_database())
),
rel as (
  select c.oid, n.nspname, c.relpages, c.reltoastrelid,
         c.oid in (select relation from locked) as is_locked
  from pg_catalog.pg_class c
  join pg_catalog.pg_namespace n on n.oid = c.relnamespace
  where c.relkind in ('r', 'm')
    and n.nspname not in ('pg_catalog', 'information_schema')
    and n.nspname !~ '^pg_(toast|temp_)'
),
sized as (
  select r.nspname,
         r.is_locked,
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
                   where i.indrelid = r.oid), 0)::bigint as index_bytes
  from rel r
)
select s.nspname::text as schema,
       count(*)::int as relations,
       sum(s.heap_bytes)::bigint as heap_bytes,
       sum(s.toast_bytes)::bigint as toast_bytes,
       sum(s.index_bytes)::bigint as index_bytes,
       sum(s.heap_bytes + s.toast_bytes + s.index_bytes)::bigint as total_bytes,
       count(*) filter (where s.is_locked)::int as estimated_relations
from sized s
group by s.nspname
order by total_bytes desc, schema
