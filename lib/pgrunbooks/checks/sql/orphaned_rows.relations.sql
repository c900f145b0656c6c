-- orphaned_rows (relations): for each (table, column) -> (referenced table, column): names, privileges,
--   whether row level security applies to this role (then the answer would be wrong, so it is skipped),
--   whether the column leads an index, and the planner's row and distinct-value estimates, which choose
--   how to probe it.
select r.ord::int as ord,
       n.nspname::text as schema,
       t.relname::text as table,
       pg_catalog.format('%%I.%%I.%%I', n.nspname, t.relname, r.col) as name,
       r.col::text as column,
       pn.nspname::text as referenced_schema,
       p.relname::text as referenced_table,
       r.pcol::text as referenced_column,
       pg_catalog.has_table_privilege(t.oid, 'select') and pg_catalog.has_table_privilege(p.oid, 'select') as readable,
       -- row level security would hide rows from this role and make children look orphaned (or hide them)
       pg_catalog.row_security_active(t.oid) or pg_catalog.row_security_active(p.oid) as rls_active,
       exists (select 1 from pg_catalog.pg_index i
               where i.indrelid = t.oid and i.indisvalid and i.indpred is null and i.indkey[0] = a.attnum) as indexed,
       exists (select 1 from pg_catalog.pg_index i
               where i.indrelid = p.oid and i.indisvalid and i.indpred is null and i.indkey[0] = pa.attnum)
         as referenced_indexed,
       greatest(t.reltuples, 0)::bigint as rows_estimate,
       (select case when s.n_distinct < 0 then -s.n_distinct * greatest(t.reltuples, 0) else s.n_distinct end
        from pg_catalog.pg_stats s
        where s.schemaname = n.nspname and s.tablename = t.relname and s.attname = r.col and not s.inherited
        limit 1)::float8 as distinct_estimate
from unnest(%(tables)s::oid[], %(columns)s::text[], %(referenced)s::oid[], %(referenced_columns)s::text[])
       with ordinality r(relid, col, prelid, pcol, ord)
join pg_catalog.pg_class t on t.oid = r.relid
join pg_catalog.pg_namespace n on n.oid = t.relnamespace
join pg_catalog.pg_attribute a on a.attrelid = t.oid and a.attname = r.col
join pg_catalog.pg_class p on p.oid = r.prelid
join pg_catalog.pg_namespace pn on pn.oid = p.relnamespace
join pg_catalog.pg_attribute pa on pa.attrelid = p.oid and pa.attname = r.pcol
order by r.ord
