-- stale_statistics: analyzed tables whose rows changed a lot since their last (auto)analyze:
--   n_mod_since_analyze / reltuples >= %(warning)s with at least %(min_changes)s modified rows.
-- Privileges: none.
-- Caveats: never-analyzed tables are the never_analyzed check's; reltuples is the planner's estimate.
select s.schemaname::text as schema,
       s.relname::text as table,
       pg_catalog.format('%%I.%%I', s.schemaname, s.relname) as name,
       s.n_live_tup,
       greatest(c.reltuples, 0)::bigint as rows_estimate,
       s.n_mod_since_analyze,
       (s.n_mod_since_analyze::float8 / greatest(c.reltuples, s.n_live_tup, 1)) as modified_ratio,
       greatest(s.last_analyze, s.last_autoanalyze) as last_analyze,
       extract(epoch from now() - greatest(s.last_analyze, s.last_autoanalyze))::float8 / 86400 as days_since,
       coalesce('autovacuum_enabled=false' = any (c.reloptions), false) as autovacuum_disabled
from pg_catalog.pg_stat_user_tables s
join pg_catalog.pg_class c on c.oid = s.relid
where greatest(s.last_analyze, s.last_autoanalyze) is not null
  and s.n_mod_since_analyze >= %(min_changes)s
  and s.n_mod_since_analyze::float8 / greatest(c.reltuples, s.n_live_tup, 1) >= %(warning)s
order by modified_ratio desc, name
