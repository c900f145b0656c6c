-- definer_view: a dashboard view created without security_invoker.
-- Plants: view public.org_call_summary (org_id, calls, minutes, last_call_at) over public.calls,
--   owned by postgres (the owner of calls), select granted to authenticated: it runs as postgres,
--   the tenant policy of calls does not apply, and every member reads every organization's totals.
-- Found by: security_definer_views.

set local role postgres;

create view public.org_call_summary as
select c.org_id, count(*) as calls, round(sum(c.duration) / 60.0, 1) as minutes, max(c.created_at) as last_call_at
from public.calls c
group by c.org_id;
grant select on public.org_call_summary to authenticated;
