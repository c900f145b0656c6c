-- activity: the app's webhook handler. A call to one organization ends and an SMS goes out, in one
--   transaction, as the backend's `postgres` role (which bypasses RLS, as server-side code does).
-- Variables: orgs (the number of organizations; ids are md5('org:' || n)::uuid).
\set k random(1, :orgs)
\set secs random(0, 900)
\set n random(1000000, 9999999)
begin;
insert into public.calls (org_id, direction, from_number, to_number, status, duration, created_at, ended_at)
  values (md5('org:' || (:k)::int)::uuid, 'inbound', '+1555' || (:n)::int, '+1800' || (:k)::int, 'completed',
          (:secs)::int, now(), now() + make_interval(secs => (:secs)::int));
insert into public.sms_messages (org_id, direction, from_number, to_number, body, status, created_at)
  values (md5('org:' || (:k)::int)::uuid, 'outbound', '+1800' || (:k)::int, '+1555' || (:n)::int,
          'Thanks for calling, we will get back to you shortly.', 'sent', now());
end;
