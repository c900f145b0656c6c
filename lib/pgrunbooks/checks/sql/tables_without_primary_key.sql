-- tables_without_primary_key: tables in the exposed schemas (%(exposed_schemas)s) without a primary key
--   (splinter 0004), with a unique index that could become one and whether the API roles reach them.
-- Privileges: none (catalogs only).
-- Caveats: partitions are left out (their parent's key covers them), and so are tables an extension
--   owns; a unique index qualifies as a candidate key only when it is valid, not partial, has no
--   expression and every column is NOT NULL.
with api as (
  select (select r.oid from pg_catalog.pg_roles r where r.rolname = 'anon') as anon,
         (select r.oid from pg_catalog.pg_roles r where r.rolname = 'authenticated') as authenticated
)
select n.nspname::text as schema,
       c.relname::text as table,
       pg_catalog.format('%%I.%%I', n.nspname, c.relname) as name,
       c.relkind::text as relkind,
       greatest(c.reltuples, 0)::bigint as estimated_rows,
       (select pg_catalog.format('%%I', i.relname)
        from pg_catalog.pg_index x
        join pg_catalog.pg_class i on i.oid = x.indexrelid
        where x.indrelid = c.oid and x.indisunique and x.indisvalid and x.indpred is null
          and x.indexprs is null and x.indnkeyatts = x.indnatts
          and not exists (select 1 from pg_catalog.pg_attribute a
                          where a.attrelid = c.oid and a.attnum = any (x.indkey) and not a.attnotnull)
        order by x.indnatts, i.relname limit 1) as candidate_index,
       exists (select 1 from pg_catalog.pg_attribute a
               where a.attrelid = c.oid and a.attname = 'id' and not a.attisdropped) as has_id_column,
       array_remove(array[
         case when pg_catalog.has_any_column_privilege(api.anon, c.oid, 'select') then 'anon' end,
         case when pg_catalog.has_any_column_privilege(api.authenticated, c.oid, 'select') then 'authenticated' end
       ], null) as api_select
from pg_catalog.pg_class c
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
cross join api
where c.relkind in ('r', 'p')
  and not c.relispartition
  and n.nspname = any (%(exposed_schemas)s::text[])
  and not exists (select 1 from pg_catalog.pg_constraint k where k.conrelid = c.oid and k.contype = 'p')
  and not exists (select 1 from pg_catalog.pg_depend d
                  where d.classid = 'pg_catalog.pg_class'::regclass and d.objid = c.oid and d.deptype = 'e')
order by name
