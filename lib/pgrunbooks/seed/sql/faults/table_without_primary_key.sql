-- table_without_primary_key: an append-only log created without a key.
-- Plants: public.call_event_log (call_id -> calls, event, payload, logged_at) with `rows` rows and an
--   index on call_id, no primary key; row level security on with a service-role-only policy, granted
--   to service_role only.
-- Found by: tables_without_primary_key.
-- Values: anchor (the data's anchor), rows (events).

set local role postgres;

create table public.call_event_log (
  call_id uuid not null
    constraint call_event_log_call_id_fkey references public.calls (id) on delete cascade,
  event text not null,
  payload jsonb not null default '{}',
  logged_at timestamptz not null
);
create index call_event_log_call_id_idx on public.call_event_log (call_id);
alter table public.call_event_log enable row level security;
create policy call_event_log_service_role_only on public.call_event_log for all to service_role
  using (true) with check (true);
grant select, insert on public.call_event_log to service_role;

insert into public.call_event_log (call_id, event, payload, logged_at)
select c.id, (array['ringing', 'answered', 'completed'])[1 + n %% 3], jsonb_build_object('sequence', n),
       %(anchor)s::timestamptz - make_interval(mins => n)
from generate_series(1, %(rows)s) n
join lateral (select id from public.calls order by created_at, id
              offset (n %% greatest(1, (select count(*) from public.calls))) limit 1) c on true;
