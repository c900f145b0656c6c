-- xid_wraparound: transaction-ID age of every database (age(datfrozenxid)) against the 2^31 wraparound
--   limit, with the oldest tables of the current database.
-- Privileges: none.
-- Caveats: the limit is cluster-wide: the oldest database stops every write when it reaches it, so all
--   databases are reported (template0 included: autovacuum freezes it too). Autovacuum forces an
--   anti-wraparound vacuum at autovacuum_freeze_max_age.
select d.datname::text as database,
       pg_catalog.age(d.datfrozenxid)::bigint as age,
       (pg_catalog.age(d.datfrozenxid)::float8 / 2147483648) as ratio,
       d.datname = current_database() as current,
       current_setting('autovacuum_freeze_max_age')::bigint as freeze_max_age,
       case when d.datname = current_database() then
         array(select pg_catalog.format('%%I.%%I', n.nspname, c.relname) || ' ' || pg_catalog.age(c.relfrozenxid)
               from pg_catalog.pg_class c
               join pg_catalog.pg_namespace n on n.oid = c.relnamespace
               where c.relkind in ('r', 'm', 't') and c.relfrozenxid <> '0'
               order by pg_catalog.age(c.relfrozenxid) desc, c.oid
               limit 5)
       end as oldest_tables
from pg_catalog.pg_database d
order by age desc, database
