-- vacuum_age: tables that changed (dead tuples + inserts since the last vacuum >= %(min_changes)s) and have
--   not been vacuumed for a while, or ever; plus the server's autovacuum switch.
-- Privileges: none.
-- Caveats: "never" means never since the statistics were last reset (or since this database was cloned);
--   tables with autovacuum_enabled = false are called out because nothing will ever vacuum them.
select s.schemaname::text as schema,
       s.relname::text as table,
       pg_catalog.format('%%I.%%I', s.schemaname, s.relname) as name,
       s.n_live_tup,
       s.n_dead_tup,
       s.n_ins_since_vacuum,
       s.n_dead_tup + s.n_ins_since_vacuum as changes,
       greatest(s.last_vacuum, s.last_autovacuum) as last_vacuum,
       extract(epoch from now() - greatest(s.last_vacuum, s.last_autovacuum))::float8 / 86400 as days_since,
       coalesce('autovacuum_enabled=false' = any (c.reloptions), false) as autovacuum_disabled,
       current_setting('autovacuum') = 'on' as autovacuum_on
from pg_catalog.pg_stat_user_tables s
join pg_catalog.pg_class c on c.oid = s.relid
where s.n_dead_tup + s.n_ins_since_vacuum >= %(min_changes)s
  and (greatest(s.last_vacuum, s.last_autovacuum) is null
       or greatest(s.last_vacuum, s.last_autovacuum) <= now() - make_interval(secs => %(warning)s * 86400))
order by days_since desc nulls first, changes desc, name
