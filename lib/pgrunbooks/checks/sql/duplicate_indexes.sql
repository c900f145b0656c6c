-- duplicate_indexes: indexes made redundant by another index of the same table: same access method,
--   expressions and predicate, and key columns (with operator classes, collations and sort options) equal
--   to, or for btree a leading prefix of, the other's.
-- Privileges: none.
-- Caveats: an index is never reported as redundant when it enforces something the other does not (it is
--   unique or backs a constraint and the other is not an identical unique index); of two identical plain
--   indexes the newer (higher oid) is reported. Invalid indexes are the invalid_indexes check's.
with idx as (
  select i.indexrelid, i.indrelid, ic.relam, i.indisunique, i.indnkeyatts as nkeys, i.indnatts as natts,
         string_to_array(i.indkey::text, ' ')::int2[] as cols,
         string_to_array(i.indclass::text, ' ')::oid[] as opclasses,
         string_to_array(i.indcollation::text, ' ')::oid[] as collations,
         string_to_array(i.indoption::text, ' ')::int2[] as options,
         coalesce(pg_catalog.pg_get_expr(i.indexprs, i.indrelid), '') as exprs,
         coalesce(pg_catalog.pg_get_expr(i.indpred, i.indrelid), '') as pred,
         exists (select 1 from pg_catalog.pg_constraint k
                 where k.conindid = i.indexrelid and k.contype in ('p', 'u', 'x')) as constraint_backed,
         n.nspname, ic.relname, t.relname as table_name
  from pg_catalog.pg_index i
  join pg_catalog.pg_class ic on ic.oid = i.indexrelid
  join pg_catalog.pg_class t on t.oid = i.indrelid
  join pg_catalog.pg_namespace n on n.oid = t.relnamespace
  where i.indisvalid
    and n.nspname not in ('pg_catalog', 'information_schema')
    and n.nspname !~ '^pg_(toast|temp_)'
)
select a.nspname::text as schema,
       a.table_name::text as table,
       pg_catalog.format('%%I.%%I', a.nspname, a.relname) as name,
       pg_catalog.format('%%I.%%I', b.nspname, b.relname) as covered_by,
       a.nkeys = b.nkeys and a.cols = b.cols as identical,
       pg_catalog.pg_get_indexdef(a.indexrelid) as definition,
       pg_catalog.pg_get_indexdef(b.indexrelid) as covering_definition,
       ac.relpages::bigint * current_setting('block_size')::int as bytes
from idx a
join idx b on b.indrelid = a.indrelid and b.indexrelid <> a.indexrelid
join pg_catalog.pg_class ac on ac.oid = a.indexrelid
where a.relam = b.relam
  and a.exprs = b.exprs
  and a.pred = b.pred
  and a.natts = a.nkeys                         -- a has no INCLUDE columns …
  and a.nkeys <= b.nkeys                        -- … and its keys lead b's
  and a.cols[1:a.nkeys] = b.cols[1:a.nkeys]
  and a.opclasses[1:a.nkeys] = b.opclasses[1:a.nkeys]
  and a.collations[1:a.nkeys] = b.collations[1:a.nkeys]
  and a.options[1:a.nkeys] = b.options[1:a.nkeys]
  and (a.nkeys = b.nkeys or a.relam = (select am.oid from pg_catalog.pg_am am where am.amname = 'btree'))
  and not a.constraint_backed
  and (not a.indisunique or (b.indisunique and a.nkeys = b.nkeys))
  -- two identical indexes: report one of them (the one without a constraint, else the newer)
  and not (a.nkeys = b.nkeys and a.cols = b.cols and a.indisunique = b.indisunique
           and not b.constraint_backed and a.indexrelid < b.indexrelid)
order by name, covered_by
