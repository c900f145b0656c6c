-- rls_disabled: a table of tenant data that the API role can read, with row level security off.
-- Plants: public.webhook_events (org_id, payload...) with `rows` events, granted to authenticated
--   and service_role; row level security never enabled.
-- Found by: rls_disabled.
-- Values: anchor (the data's anchor), rows (events).

set local role postgres;

create table public.webhook_events (
  id uuid primary key default gen_random_uuid(),
  org_id uuid not null
    constraint webhook_events_org_id_fkey references public.organizations (id) on delete cascade,
  provider text not null default 'twilio',
  event_type text not null,
  payload jsonb not null default '{}',
  received_at timestamptz not null default now()
);
create index webhook_events_org_id_received_at_idx on public.webhook_events (org_id, received_at);

-- Row level security was never enabled, yet the API role can read it.
grant select, insert, update, delete on public.webhook_events to authenticated, service_role;

insert into public.webhook_events (id, org_id, provider, event_type, payload, received_at)
select md5('webhook:' || n)::uuid, o.id, 'twilio',
       (array['call.completed', 'call.ringing', 'sms.delivered', 'sms.received'])[1 + n %% 4],
       jsonb_build_object('sequence', n, 'account', 'AC' || substr(md5('acct:' || o.id), 1, 16)),
       %(anchor)s::timestamptz - make_interval(mins => 7 * n)
from generate_series(1, %(rows)s) n
join lateral (select id from public.organizations order by created_at, id
              offset (n %% greatest(1, (select count(*) from public.organizations))) limit 1) o
  on true;
