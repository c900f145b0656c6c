-- blocking_locks: every lock wait as an edge (blocked pid -> blocking pid) with both queries and the wait time;
--   the evaluator assembles the edges into trees rooted at sessions that block but are not blocked.
-- Privileges: pg_read_all_stats (pg_monitor) to see other roles' queries.
-- Caveats: pg_blocking_pids() takes the lock manager's partition locks briefly; it is called only for
--   sessions waiting on a heavyweight lock. A blocking pid of 0 is a prepared transaction.
--   The wait starts at pg_locks.waitstart (14+), else at the state change. Relations print as regclass,
--   schema-qualified and quoted because checks run with search_path = pg_catalog.
with waiting as (
  select a.pid, unnest(pg_catalog.pg_blocking_pids(a.pid)) as blocking_pid
  from pg_catalog.pg_stat_activity a
  where a.wait_event_type = 'Lock'
)
select w.pid as blocked_pid,
       w.blocking_pid,
       wa.usename as blocked_user,
       wa.application_name as blocked_application,
       extract(epoch from now() - coalesce(
         (select min(l.waitstart) from pg_catalog.pg_locks l where l.pid = w.pid and not l.granted),
         wa.state_change))::float8 as wait_s,
       (select l.locktype || coalesce(' on ' || l.relation::regclass::text, '') || ' (' || l.mode || ')'
        from pg_catalog.pg_locks l where l.pid = w.pid and not l.granted limit 1) as waiting_for,
       left(wa.query, 1000) as blocked_query,
       ba.usename as blocking_user,
       ba.application_name as blocking_application,
       ba.state as blocking_state,
       extract(epoch from now() - ba.xact_start)::float8 as blocking_transaction_s,
       left(ba.query, 1000) as blocking_query
from waiting w
join pg_catalog.pg_stat_activity wa on wa.pid = w.pid
left join pg_catalog.pg_stat_activity ba on ba.pid = w.blocking_pid
order by w.blocking_pid, wait_s desc, w.pid
