-- orphaned_rows (discovery): declared single-column foreign keys of tables in %(schemas)s; the evaluator adds
--   the undeclared relationships of missing_foreign_keys and probes each one (orphaned_rows.probe*.sql).
-- Privileges: SELECT on both tables of a relationship (others are reported as skipped with the grant).
-- Caveats: a validated foreign key cannot have orphans unless its triggers were bypassed
--   (session_replication_role = replica, as in restores); such orphans are critical.
select k.conrelid::bigint as table_oid,
       k.conname::text as constraint_name,
       k.convalidated as validated,
       k.confrelid::bigint as referenced_oid,
       a.attname::text as column,
       fa.attname::text as referenced_column
from pg_catalog.pg_constraint k
join pg_catalog.pg_class t on t.oid = k.conrelid
join pg_catalog.pg_namespace n on n.oid = t.relnamespace
join pg_catalog.pg_attribute a on a.attrelid = k.conrelid and a.attnum = k.conkey[1]
join pg_catalog.pg_attribute fa on fa.attrelid = k.confrelid and fa.attnum = k.confkey[1]
where k.contype = 'f'
  and cardinality(k.conkey) = 1
  and not t.relispartition
  and n.nspname = any (%(schemas)s::text[])
order by n.nspname, t.relname, k.conname
