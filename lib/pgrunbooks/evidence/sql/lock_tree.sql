-- lock_tree: every session waiting on a heavyweight lock, who blocks it (pg_blocking_pids), the lock it
--   waits for, and the same facts for each blocker, so Python can walk the tree to its roots.
-- Privileges: pg_monitor (pg_stat_activity query texts; pg_locks is readable by every role).
-- Caveats: a relation of another database shows as its oid. pg_blocking_pids takes the lock manager's partition locks: called only on lock waiters,
--   a few times per window, never per sample.
with waiting as (
  select a.pid, pg_catalog.pg_blocking_pids(a.pid) as blocked_by
  from pg_catalog.pg_stat_activity a
  where a.wait_event_type = 'Lock' and a.pid <> pg_catalog.pg_backend_pid()
),
members as (
  select w.pid from waiting w
  union
  select unnest(w.blocked_by) from waiting w
)
select a.pid,
       coalesce(w.blocked_by, '{}'::int[]) as blocked_by,
       a.state,
       a.wait_event_type,
       a.wait_event,
       a.backend_type,
       a.usename::text as role,
       a.application_name as application,
       extract(epoch from pg_catalog.now() - a.xact_start)::float8 as xact_age_s,
       extract(epoch from pg_catalog.now() - a.query_start)::float8 as query_age_s,
       (select l.mode from pg_catalog.pg_locks l where l.pid = a.pid and not l.granted limit 1) as mode,
       (select coalesce(pg_catalog.format('%I.%I', n.nspname, c.relname), l.relation::text)
        from pg_catalog.pg_locks l
        left join pg_catalog.pg_class c on c.oid = l.relation
        left join pg_catalog.pg_namespace n on n.oid = c.relnamespace
        where l.pid = a.pid and not l.granted and l.relation is not null limit 1) as relation,
       pg_catalog.left(a.query, 500) as query
from members m
join pg_catalog.pg_stat_activity a on a.pid = m.pid
left join waiting w on w.pid = a.pid
order by a.pid
