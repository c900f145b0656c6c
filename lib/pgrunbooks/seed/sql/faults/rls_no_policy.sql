-- rls_no_policy: row level security switched on, and the policy never written.
-- Plants: public.call_notes with `rows` notes on completed calls, granted to authenticated and
--   service_role, row level security enabled and no policy: the API sees nothing.
-- Found by: rls_no_policy.
-- Values: rows (notes).

set local role postgres;

create table public.call_notes (
  id uuid primary key default gen_random_uuid(),
  call_id uuid not null
    constraint call_notes_call_id_fkey references public.calls (id) on delete cascade,
  org_id uuid not null
    constraint call_notes_org_id_fkey references public.organizations (id) on delete cascade,
  body text not null,
  created_at timestamptz not null default now()
);
create index call_notes_call_id_idx on public.call_notes (call_id);
create index call_notes_org_id_created_at_idx on public.call_notes (org_id, created_at);

alter table public.call_notes enable row level security;
grant select, insert, update, delete on public.call_notes to authenticated, service_role;

insert into public.call_notes (id, call_id, org_id, body, created_at)
select md5('call-note:' || c.id)::uuid, c.id, c.org_id,
       (array['Customer asked for a callback.', 'Left a voicemail.', 'Escalated to billing.',
              'Booked an appointment.'])[1 + (get_byte(decode(md5(c.id::text), 'hex'), 0) %% 4)],
       c.created_at + interval '5 minutes'
from public.calls c
where c.status = 'completed'
  and exists (select 1 from public.organizations o where o.id = c.org_id)
order by c.created_at desc, c.id
limit %(rows)s;
