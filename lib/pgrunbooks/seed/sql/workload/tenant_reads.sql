-- tenant_reads: a member's dashboard through the Data API: their organizations, recent SMS and the
--   paid billing total, each read as `authenticated` with JWT claims, so RLS decides what is seen.
-- Variables: orgs.
\set k random(1, :orgs)
select md5('org:' || (:k)::int)::uuid::text as org,
       coalesce((select ou.user_id::text from public.org_users ou
                  where ou.org_id = md5('org:' || (:k)::int)::uuid order by ou.user_id limit 1),
                md5('user:1')::uuid::text) as member \gset
begin;
set local role authenticated;
select pg_catalog.set_config('request.jwt.claims',
                             json_build_object('sub', (:member)::text, 'role', 'authenticated')::text, true);
select o.id, o.name, o.plan from public.organizations o order by o.name;
select s.id, s.created_at, s.direction, s.status from public.sms_messages s
 where s.org_id = :org order by s.created_at desc limit 20;
select coalesce(sum(b.amount), 0) as paid from public.billing_records b where b.status = 'paid';
commit;
