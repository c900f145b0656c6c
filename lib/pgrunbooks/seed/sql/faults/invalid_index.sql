-- invalid_index: a unique index that a failed `create unique index concurrently` left INVALID.
-- Plants: a duplicate of the oldest recording (a webhook retry stored it twice); the fault's hook
--   then runs `create unique index concurrently `index` on public.recordings (url)`, which fails
--   on that duplicate and leaves that index with pg_index.indisvalid = false (maintained on writes,
--   never used by the planner).
-- Found by: invalid_indexes.
-- Identifiers: none here; the hook names the index (it must run outside a transaction).

insert into public.recordings (id, call_id, org_id, url, duration, created_at)
select md5('recording-retry:' || r.id)::uuid, r.call_id, r.org_id, r.url, r.duration,
       r.created_at + interval '30 seconds'
from public.recordings r
where exists (select 1 from public.calls c where c.id = r.call_id)
order by r.created_at, r.id
limit 1;
