-- fk_without_index: foreign keys whose referencing columns are not the leading columns (in any order) of a
--   valid, non-partial index.
-- Privileges: none.
-- Caveats: without the index every DELETE or key UPDATE on the referenced table scans the referencing
--   table (under lock), and joins on the key cannot use an index. Row counts are estimates.
select n.nspname::text as schema,
       t.relname::text as table,
       pg_catalog.format('%%I.%%I.%%I', n.nspname, t.relname, k.conname) as name,
       k.conname::text as constraint_name,
       pg_catalog.format('%%I.%%I', n.nspname, t.relname) as table_name,
       array(select a.attname::text from unnest(k.conkey) with ordinality u(attnum, ord)
             join pg_catalog.pg_attribute a on a.attrelid = k.conrelid and a.attnum = u.attnum
             order by u.ord) as columns,
       pg_catalog.format('%%I.%%I', fn.nspname, f.relname) as referenced_table,
       greatest(t.reltuples, 0)::bigint as rows_estimate,
       k.confdeltype::text as on_delete
from pg_catalog.pg_constraint k
join pg_catalog.pg_class t on t.oid = k.conrelid
join pg_catalog.pg_namespace n on n.oid = t.relnamespace
join pg_catalog.pg_class f on f.oid = k.confrelid
join pg_catalog.pg_namespace fn on fn.oid = f.relnamespace
where k.contype = 'f'
  and n.nspname not in ('pg_catalog', 'information_schema')
  and n.nspname !~ '^pg_(toast|temp_)'
  and greatest(t.reltuples, 0) >= %(min_rows)s
  and not exists (
    select 1 from pg_catalog.pg_index i
    where i.indrelid = k.conrelid and i.indisvalid and i.indpred is null
      and (string_to_array(i.indkey::text, ' ')::int2[])[1:cardinality(k.conkey)] @> k.conkey
      and (string_to_array(i.indkey::text, ' ')::int2[])[1:cardinality(k.conkey)] <@ k.conkey)
order by name
