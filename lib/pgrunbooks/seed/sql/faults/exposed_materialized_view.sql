-- exposed_materialized_view: monthly SMS totals precomputed for the dashboard.
-- Plants: materialized view public.monthly_sms_totals (org_id, month, messages) over public.sms_messages,
--   owned by postgres, select granted to authenticated: it has no row level security, so every member
--   reads every organization's totals.
-- Found by: materialized_views_exposed.

set local role postgres;

create materialized view public.monthly_sms_totals as
select s.org_id, date_trunc('month', s.created_at) as month, count(*) as messages
from public.sms_messages s
group by s.org_id, date_trunc('month', s.created_at);
grant select on public.monthly_sms_totals to authenticated;
