-- sequence_exhaustion: how much of its range each sequence has used, the range being capped by the type
--   of the column it feeds (a bigint sequence behind an integer column runs out at 2^31-1).
-- Privileges: SELECT or USAGE on a sequence to read its last value (pg_read_all_data gives it); the other
--   sequences are listed with readable = false.
-- Caveats: cycling sequences never run out and are left out; last_value is null for a sequence never
--   used (counted as 0%%).
select s.schemaname::text as schema,
       s.sequencename::text as sequence,
       pg_catalog.format('%%I.%%I', s.schemaname, s.sequencename) as name,
       s.data_type::text as data_type,
       s.last_value,
       s.start_value,
       s.min_value,
       s.max_value,
       s.increment_by,
       col.column_name,
       col.column_table,
       col.column_attname,
       col.column_type,
       case col.column_type when 'smallint' then 32767::numeric when 'integer' then 2147483647::numeric
                            else null end as column_max,
       pg_catalog.has_sequence_privilege(c.oid, 'select') or pg_catalog.has_sequence_privilege(c.oid, 'usage')
         as readable
from pg_catalog.pg_sequences s
join pg_catalog.pg_namespace n on n.nspname = s.schemaname
join pg_catalog.pg_class c on c.relnamespace = n.oid and c.relname = s.sequencename and c.relkind = 'S'
left join lateral (
  select pg_catalog.format('%%I.%%I.%%I', tn.nspname, t.relname, a.attname) as column_name,
         pg_catalog.format('%%I.%%I', tn.nspname, t.relname) as column_table,
         a.attname::text as column_attname,
         pg_catalog.format_type(a.atttypid, null) as column_type
  from pg_catalog.pg_depend d
  join pg_catalog.pg_class t on t.oid = d.refobjid
  join pg_catalog.pg_namespace tn on tn.oid = t.relnamespace
  join pg_catalog.pg_attribute a on a.attrelid = d.refobjid and a.attnum = d.refobjsubid
  where d.classid = 'pg_catalog.pg_class'::regclass and d.objid = c.oid
    and d.refclassid = 'pg_catalog.pg_class'::regclass and d.deptype in ('a', 'i')
  order by 1
  limit 1
) col on true
where not s.cycle
  and s.schemaname not in ('pg_catalog', 'information_schema')
order by name
