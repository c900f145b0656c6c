-- multixact_wraparound: multixact-ID age of every database (mxid_age(datminmxid)) against the 2^31 limit,
--   with the oldest tables of the current database.
-- Privileges: none.
-- Caveats: multixacts come from row locks shared by several transactions (foreign-key checks, SELECT … FOR
--   SHARE); the limit is cluster-wide. Autovacuum acts at autovacuum_multixact_freeze_max_age.
select d.datname::text as database,
       pg_catalog.mxid_age(d.datminmxid)::bigint as age,
       (pg_catalog.mxid_age(d.datminmxid)::float8 / 2147483648) as ratio,
       d.datname = current_database() as current,
       current_setting('autovacuum_multixact_freeze_max_age')::bigint as freeze_max_age,
       case when d.datname = current_database() then
         array(select pg_catalog.format('%%I.%%I', n.nspname, c.relname) || ' ' || pg_catalog.mxid_age(c.relminmxid)
               from pg_catalog.pg_class c
               join pg_catalog.pg_namespace n on n.oid = c.relnamespace
               where c.relkind in ('r', 'm', 't') and c.relminmxid <> '0'
               order by pg_catalog.mxid_age(c.relminmxid) desc, c.oid
               limit 5)
       end as oldest_tables
from pg_catalog.pg_database d
order by age desc, database
