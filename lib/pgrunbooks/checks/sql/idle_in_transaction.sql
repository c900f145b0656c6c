-- idle_in_transaction: sessions idle inside an open transaction for more than %(warning)s seconds,
--   with what they hold: relation locks, the xmin horizon (which stops vacuum), sessions they block.
-- Privileges: pg_read_all_stats (pg_monitor) to see other roles' sessions.
-- Caveats: the duration is now() - state_change (time since the session went idle), not the
--   transaction's age, which is reported too; skips this session and our own. Locked relations print as
--   regclass, schema-qualified and quoted because checks run with search_path = pg_catalog.
select a.pid,
       a.usename as username,
       a.application_name as application,
       a.datname as database,
       host(a.client_addr) as client_addr,
       a.state,
       extract(epoch from now() - a.state_change)::float8 as idle_s,
       extract(epoch from now() - a.xact_start)::float8 as transaction_s,
       pg_catalog.age(a.backend_xmin) as xmin_age,
       array(select distinct l.relation::regclass::text
             from pg_catalog.pg_locks l
             join pg_catalog.pg_class c on c.oid = l.relation
             where l.pid = a.pid and l.locktype = 'relation' and l.granted
               and l.database = (select d.oid from pg_catalog.pg_database d where d.datname = current_database())
               and c.relkind in ('r', 'p', 'm')
               and c.relnamespace <> 'pg_catalog'::regnamespace
             order by 1) as locked_relations,
       (select count(*) from pg_catalog.pg_stat_activity b
        where b.wait_event_type = 'Lock' and a.pid = any (pg_catalog.pg_blocking_pids(b.pid)))::int as blocking,
       left(a.query, 2000) as last_query
from pg_catalog.pg_stat_activity a
where a.backend_type = 'client backend'
  and a.state in ('idle in transaction', 'idle in transaction (aborted)')
  and a.pid <> pg_catalog.pg_backend_pid()
  and not (coalesce(a.application_name, '') like any (%(exclude_applications)s::text[]))
  and a.state_change <= now() - make_interval(secs => %(warning)s)
order by idle_s desc, a.pid
