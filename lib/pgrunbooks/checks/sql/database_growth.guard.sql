-- database_growth (guard): is public.db_metrics there, readable, and cheap to search for the latest snapshot?
select c.oid is not null as exists,
       coalesce(pg_catalog.has_table_privilege(c.oid, 'select'), false) as readable,
       coalesce(pg_catalog.row_security_active(c.oid), false) as rls_active,
       greatest(c.reltuples, 0)::bigint as rows_estimate,
       exists (select 1 from pg_catalog.pg_index i
               join pg_catalog.pg_attribute a on a.attrelid = i.indrelid and a.attnum = i.indkey[0]
               where i.indrelid = c.oid and i.indisvalid and a.attname in ('recorded_at', 'metric_name')) as indexed
from (select pg_catalog.to_regclass('public.db_metrics') as oid) r
left join pg_catalog.pg_class c on c.oid = r.oid
