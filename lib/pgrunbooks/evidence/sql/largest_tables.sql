-- largest_tables: the ten largest tables of this database with their dead tuples, to say where the
--   space goes and how much a VACUUM could make reusable.
-- Privileges: none (sizes and pg_stat_user_tables are readable by every role).
-- Caveats: dead_bytes is an estimate (total size times the dead share of the tuples). Measuring a size
--   opens the relation (ACCESS SHARE): a table with a lock request queued on it (a DDL waiting) would
--   queue us too, so its size is estimated from pg_class.relpages instead (sized_from_catalog).
with contended as (
  select distinct l.relation from pg_catalog.pg_locks l
  where not l.granted and l.relation is not null and l.database = (
    select d.oid from pg_catalog.pg_database d where d.datname = pg_catalog.current_database())
),
sized as (
  select c.oid, c.relnamespace, c.relname, ct.relation is not null as sized_from_catalog,
         case when ct.relation is null then pg_catalog.pg_total_relation_size(c.oid)
              else c.relpages::bigint * pg_catalog.current_setting('block_size')::bigint end as total_bytes,
         case when ct.relation is null then pg_catalog.pg_relation_size(c.oid)
              else c.relpages::bigint * pg_catalog.current_setting('block_size')::bigint end as heap_bytes
  from pg_catalog.pg_class c
  left join contended ct on ct.relation = c.oid
  where c.relkind in ('r', 'm')
)
select pg_catalog.format('%I.%I', n.nspname, c.relname) as "table",
       c.total_bytes::bigint as total_bytes,
       c.heap_bytes::bigint as heap_bytes,
       c.sized_from_catalog,
       coalesce(st.n_live_tup, 0)::bigint as live_tuples,
       coalesce(st.n_dead_tup, 0)::bigint as dead_tuples,
       (c.heap_bytes::float8 * coalesce(st.n_dead_tup, 0)
        / nullif(coalesce(st.n_live_tup, 0) + coalesce(st.n_dead_tup, 0), 0))::bigint as dead_bytes,
       pg_catalog.pg_database_size(pg_catalog.current_database())::bigint as database_bytes
from sized c
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
left join pg_catalog.pg_stat_all_tables st on st.relid = c.oid
where n.nspname not in ('pg_catalog', 'information_schema') and n.nspname !~ '^pg_toast'
order by total_bytes desc, "table"
limit 10
