-- missing_foreign_keys: "*_id" columns of tables in %(schemas)s that carry no foreign key although they match
--   another table's single-column key: (a) a column of the same name elsewhere has a foreign key to that key
--   (the schema's own convention), or (b) the name's prefix names the table (call_id -> calls.id) and the
--   types agree.
-- Privileges: none.
-- Caveats: a naming heuristic: review before adding constraints. Tables matching %(exclude_tables)s (LIKE
--   patterns; archives by default) and tables whose comment says "no foreign keys" are left out, being
--   designed without them.
with cols as (
  select c.oid as relid, n.nspname, c.relname, a.attnum, a.attname, a.atttypid
  from pg_catalog.pg_attribute a
  join pg_catalog.pg_class c on c.oid = a.attrelid
  join pg_catalog.pg_namespace n on n.oid = c.relnamespace
  where c.relkind in ('r', 'p')
    and not c.relispartition
    and n.nspname = any (%(schemas)s::text[])
    and a.attnum > 0 and not a.attisdropped
    and a.attname like '%%\_id'
    and not (c.relname like any (%(exclude_tables)s::text[]))
    and coalesce(pg_catalog.obj_description(c.oid, 'pg_class'), '') !~* 'no foreign keys'
    and not exists (select 1 from pg_catalog.pg_constraint k
                    where k.conrelid = c.oid and k.contype = 'f' and a.attnum = any (k.conkey))
),
keys as (
  -- single-column primary keys and unique constraints of user tables
  select k.conrelid as relid, n.nspname, t.relname, a.attname, a.atttypid, k.contype
  from pg_catalog.pg_constraint k
  join pg_catalog.pg_class t on t.oid = k.conrelid
  join pg_catalog.pg_namespace n on n.oid = t.relnamespace
  join pg_catalog.pg_attribute a on a.attrelid = k.conrelid and a.attnum = k.conkey[1]
  where k.contype in ('p', 'u') and cardinality(k.conkey) = 1
    and n.nspname not in ('pg_catalog', 'information_schema')
    and n.nspname !~ '^pg_(toast|temp_)'
),
convention as (
  -- column name -> the key its same-named columns reference elsewhere
  select distinct a.attname, k.confrelid as relid, fa.attname as ref_attname
  from pg_catalog.pg_constraint k
  join pg_catalog.pg_attribute a on a.attrelid = k.conrelid and a.attnum = k.conkey[1]
  join pg_catalog.pg_attribute fa on fa.attrelid = k.confrelid and fa.attnum = k.confkey[1]
  where k.contype = 'f' and cardinality(k.conkey) = 1
),
candidates as (
  select c.*, k.relid as ref_relid, k.nspname as ref_schema, k.relname as ref_table, k.attname as ref_column,
         pg_catalog.format('same-named columns elsewhere reference %%I.%%I(%%I)', k.nspname, k.relname, k.attname)
           as evidence, 1 as rank
  from cols c
  join convention v on v.attname = c.attname
  join keys k on k.relid = v.relid and k.attname = v.ref_attname and k.atttypid = c.atttypid
  union all
  select c.*, k.relid, k.nspname, k.relname, k.attname,
         pg_catalog.format('the name points at %%I.%%I and the types match', k.nspname, k.relname), 2
  from cols c
  join keys k on k.contype = 'p' and k.atttypid = c.atttypid and k.relid <> c.relid
   and k.nspname = c.nspname
   and k.relname in (left(c.attname, -3), left(c.attname, -3) || 's', left(c.attname, -3) || 'es',
                     regexp_replace(left(c.attname, -3), 'y$', 'ies'))
)
select d.* from (
select distinct on (c.relid, c.attnum)
       c.nspname::text as schema,
       c.relname::text as table,
       pg_catalog.format('%%I.%%I.%%I', c.nspname, c.relname, c.attname) as name,
       c.attname::text as column,
       pg_catalog.format('%%I.%%I', c.ref_schema, c.ref_table) as referenced_table,
       c.ref_column::text as referenced_column,
       c.evidence,
       c.relid::bigint as table_oid,
       c.ref_relid::bigint as referenced_oid,
       exists (select 1 from pg_catalog.pg_index i
               where i.indrelid = c.relid and i.indisvalid and i.indpred is null and i.indkey[0] = c.attnum)
         as indexed,
       exists (select 1 from pg_catalog.pg_index i
               where i.indrelid = c.ref_relid and i.indisvalid and i.indisunique and i.indpred is null
                 and i.indnkeyatts = 1
                 and i.indkey[0] = (select a.attnum from pg_catalog.pg_attribute a
                                    where a.attrelid = c.ref_relid and a.attname = c.ref_column))
         as referenced_key_indexed
from candidates c
order by c.relid, c.attnum, c.rank, referenced_table
) d
order by d.name
