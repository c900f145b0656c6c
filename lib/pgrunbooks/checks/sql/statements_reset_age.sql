-- statements_reset_age: since when pg_stat_statements has been collecting, how many entries it holds
--   against pg_stat_statements.max, how often it evicted entries, and whether this role may reset it.
-- Privileges: extension pg_stat_statements 1.9+ (pg_stat_statements_info); none beyond that.
-- Caveats: the reset function's argument list differs by version, so EXECUTE is tested on every
--   pg_stat_statements_reset overload in the extension's schema.
select i.stats_reset,
       extract(epoch from now() - i.stats_reset)::float8 as age_s,
       i.dealloc,
       (select count(*) from {pgss_fn}(false) x)::int as entries,
       nullif(current_setting('pg_stat_statements.max', true), '')::int as max_entries,
       exists (select 1 from pg_catalog.pg_proc p
               where p.pronamespace = (select e.extnamespace from pg_catalog.pg_extension e where e.extname = 'pg_stat_statements')
                 and p.proname = 'pg_stat_statements_reset'
                 and pg_catalog.has_function_privilege(p.oid, 'execute')) as may_reset
from {pgss_info} i
