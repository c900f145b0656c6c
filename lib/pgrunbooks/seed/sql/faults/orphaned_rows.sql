-- orphaned_rows: three organizations deleted by hand; their rows stayed behind.
-- Plants: drops the org_id foreign keys of phone_numbers, org_users, invoices, calls and
--   sms_messages and the recordings -> calls foreign key, then inserts the phones, members,
--   invoices, calls and messages of `deleted_orgs` organizations that no longer exist
--   (md5('deleted-org:' || n)::uuid) and recordings of calls that no longer exist.
-- Found by: orphaned_rows (the rows), missing_foreign_keys (the columns left without a constraint).
-- Values: anchor (the data's anchor), deleted_orgs, and the orphan rows per table: phone_numbers,
--   org_users, invoices, calls, sms_messages, recordings.

alter table public.phone_numbers drop constraint if exists phone_numbers_org_id_fkey;
alter table public.org_users drop constraint if exists org_users_org_id_fkey;
alter table public.invoices drop constraint if exists invoices_org_id_fkey;
alter table public.calls drop constraint if exists calls_org_id_fkey;
alter table public.sms_messages drop constraint if exists sms_messages_org_id_fkey;
alter table public.recordings drop constraint if exists recordings_call_id_fkey;

-- Orphan phone p belongs to deleted org 1 + (p mod deleted_orgs).
insert into public.phone_numbers (id, org_id, number, label, assigned_to_org, created_at)
select md5('orphan-phone:' || p)::uuid, md5('deleted-org:' || (1 + p %% %(deleted_orgs)s))::uuid,
       '+1999' || lpad(p::text, 7, '0'), 'Main line', true,
       %(anchor)s::timestamptz - make_interval(days => 500 + p)
from generate_series(1, %(phone_numbers)s) p;

insert into public.org_users (id, org_id, user_id, role, created_at)
select md5('orphan-org-user:' || n)::uuid, md5('deleted-org:' || (1 + n %% %(deleted_orgs)s))::uuid,
       md5('user:' || (2 + n))::uuid, 'member',
       %(anchor)s::timestamptz - make_interval(days => 480 + n)
from generate_series(1, %(org_users)s) n;

insert into public.invoices (id, org_id, number, amount, status, issued_at, due_at, created_at)
select md5('orphan-invoice:' || n)::uuid, md5('deleted-org:' || (1 + n %% %(deleted_orgs)s))::uuid,
       'INV-D' || lpad(n::text, 5, '0'), 99.00 + n,
       case when n <= 4 then 'paid' else 'uncollectible' end,
       date_trunc('month', %(anchor)s::timestamptz) - make_interval(months => 12 + n),
       date_trunc('month', %(anchor)s::timestamptz) - make_interval(months => 12 + n) + interval '30 days',
       date_trunc('month', %(anchor)s::timestamptz) - make_interval(months => 12 + n)
from generate_series(1, %(invoices)s) n;

-- Calls and messages go through the orphan phones, so they share the phone's (deleted) org.
insert into public.calls
  (id, org_id, phone_number_id, direction, from_number, to_number, status, duration, created_at, ended_at)
select md5('orphan-call:' || n)::uuid,
       md5('deleted-org:' || (1 + (1 + n %% %(phone_numbers)s) %% %(deleted_orgs)s))::uuid,
       md5('orphan-phone:' || (1 + n %% %(phone_numbers)s))::uuid, 'inbound',
       '+1555' || lpad(n::text, 7, '0'), '+1999' || lpad((1 + n %% %(phone_numbers)s)::text, 7, '0'),
       'completed', 60 + n,
       %(anchor)s::timestamptz - make_interval(days => 300 + 5 * n),
       %(anchor)s::timestamptz - make_interval(days => 300 + 5 * n) + make_interval(secs => 60 + n)
from generate_series(1, %(calls)s) n;

insert into public.sms_messages
  (id, org_id, phone_number_id, direction, from_number, to_number, body, status, segments, created_at)
select md5('orphan-sms:' || n)::uuid,
       md5('deleted-org:' || (1 + (1 + n %% %(phone_numbers)s) %% %(deleted_orgs)s))::uuid,
       md5('orphan-phone:' || (1 + n %% %(phone_numbers)s))::uuid, 'outbound',
       '+1999' || lpad((1 + n %% %(phone_numbers)s)::text, 7, '0'), '+1555' || lpad(n::text, 7, '0'),
       'Your appointment is confirmed.', 'delivered', 1,
       %(anchor)s::timestamptz - make_interval(days => 120 + 5 * n)
from generate_series(1, %(sms_messages)s) n;

-- Recordings whose call row was deleted once the recordings foreign key was gone.
insert into public.recordings (id, call_id, org_id, url, duration, created_at)
select md5('orphan-recording:' || n)::uuid, md5('deleted-call:' || n)::uuid, md5('org:1')::uuid,
       'https://storage.victorysync.io/recordings/' || md5('org:1')::uuid || '/'
         || md5('deleted-call:' || n)::uuid || '.mp3',
       30 * n, %(anchor)s::timestamptz - make_interval(days => 200 + n)
from generate_series(1, %(recordings)s) n;
