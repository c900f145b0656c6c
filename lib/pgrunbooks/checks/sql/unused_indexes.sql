-- unused_indexes: valid indexes never scanned since statistics began, excluding primary keys, unique and
--   exclusion indexes, indexes backing a constraint, and indexes that are the only support of a foreign key
--   (fk_without_index would ask for them back).
-- Privileges: none.
-- Caveats: idx_scan counts since the last statistics reset (see stats_reset) and on this server only:
--   an index used only on a read replica looks unused here. Sizes come from pg_relation_size, except for
--   indexes locked ACCESS EXCLUSIVE by someone else (relpages).
with locked as (
  select distinct l.relation
  from pg_catalog.pg_locks l
  where l.locktype = 'relation' and l.mode = 'AccessExclusiveLock'
    and l.database = (select d.oid from pg_catalog.pg_database d where d.datname = current_database())
)
select s.schemaname::text as schema,
       s.relname::text as table,
       pg_catalog.format('%%I.%%I', s.schemaname, s.indexrelname) as name,
       s.idx_scan,
       case when i.indexrelid in (select relation from locked) or i.indrelid in (select relation from locked)
            then ic.relpages::bigint * current_setting('block_size')::int
            else pg_catalog.pg_relation_size(i.indexrelid) end as bytes,
       {last_idx_scan} as last_idx_scan,  -- a fragment (PostgreSQL 16+), null before
       (select d.stats_reset from pg_catalog.pg_stat_database d where d.datname = current_database()) as stats_reset,
       pg_catalog.pg_get_indexdef(i.indexrelid) as definition
from pg_catalog.pg_stat_user_indexes s
join pg_catalog.pg_index i on i.indexrelid = s.indexrelid
join pg_catalog.pg_class ic on ic.oid = i.indexrelid
where s.idx_scan = 0
  and i.indisvalid and i.indisready
  and not i.indisprimary and not i.indisunique and not i.indisexclusion
  and not exists (select 1 from pg_catalog.pg_constraint k where k.conindid = i.indexrelid and k.contype in ('p', 'u', 'x'))
  and not exists (
    -- the index leads with a foreign key's columns and no other valid index does
    select 1 from pg_catalog.pg_constraint k
    where k.contype = 'f' and k.conrelid = i.indrelid
      and (string_to_array(i.indkey::text, ' ')::int2[])[1:cardinality(k.conkey)] @> k.conkey
      and (string_to_array(i.indkey::text, ' ')::int2[])[1:cardinality(k.conkey)] <@ k.conkey
      and not exists (
        select 1 from pg_catalog.pg_index o
        where o.indrelid = i.indrelid and o.indexrelid <> i.indexrelid and o.indisvalid and o.indpred is null
          and (string_to_array(o.indkey::text, ' ')::int2[])[1:cardinality(k.conkey)] @> k.conkey
          and (string_to_array(o.indkey::text, ' ')::int2[])[1:cardinality(k.conkey)] <@ k.conkey))
order by bytes desc, name
