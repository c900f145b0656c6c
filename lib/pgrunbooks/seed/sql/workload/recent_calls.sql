-- recent_calls: a member opens the call log. The API looks the member up, then reads the
--   organization's 20 newest calls as `authenticated` with the member's JWT claims (set local: they
--   end with the transaction), so the tenant policies apply. Recordings are not read: the seeded
--   `ungranted_table` fault revokes them from authenticated, and an aborted client ends pgbench's run.
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
select c.id, c.created_at, c.status, c.duration from public.calls c where c.org_id = :org order by c.created_at desc limit 20;
commit;
