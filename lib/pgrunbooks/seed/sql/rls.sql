-- Per database: row-level security and grants for the API roles. Run once,
-- as a superuser, after app.sql. Objects are created as `postgres`.
--
-- Tenancy goes through membership in org_users. Every call of auth.uid() in a
-- policy is wrapped as `(select auth.uid())` so it is evaluated once per
-- statement (an InitPlan), not once per row.

set role postgres;

-- The orgs the requesting user belongs to. SECURITY DEFINER (owned by
-- postgres, which bypasses RLS) so that org_users' own policy can use it
-- without recursing into itself; search_path pinned to '' so the definer's
-- privileges cannot be hijacked through objects planted earlier on the path.
create function public.user_org_ids() returns setof uuid
language sql stable security definer set search_path = ''
as $$
  select ou.org_id from public.org_users ou where ou.user_id = (select auth.uid())
$$;
revoke execute on function public.user_org_ids() from public;
grant execute on function public.user_org_ids() to authenticated, service_role;

alter table public.organizations enable row level security;
alter table public.profiles enable row level security;
alter table public.org_users enable row level security;
alter table public.phone_numbers enable row level security;
alter table public.calls enable row level security;
alter table public.recordings enable row level security;
alter table public.billing_records enable row level security;
alter table public.invoices enable row level security;
alter table public.sms_messages enable row level security;
alter table public.archives enable row level security;
alter table public.call_archives enable row level security;
alter table public.sms_archives enable row level security;
alter table public.db_metrics enable row level security;

create policy organizations_member_select on public.organizations
  for select to authenticated
  using (id in (select ou.org_id from public.org_users ou where ou.user_id = (select auth.uid())));
create policy organizations_admin_update on public.organizations
  for update to authenticated
  using (id in (select ou.org_id from public.org_users ou
                where ou.user_id = (select auth.uid()) and ou.role in ('owner', 'admin')))
  with check (id in (select ou.org_id from public.org_users ou
                     where ou.user_id = (select auth.uid()) and ou.role in ('owner', 'admin')));

create policy profiles_select_self_or_colleague on public.profiles
  for select to authenticated
  using (id = (select auth.uid())
         or id in (select ou.user_id from public.org_users ou
                   where ou.org_id in (select public.user_org_ids())));
create policy profiles_update_self on public.profiles
  for update to authenticated
  using (id = (select auth.uid()))
  with check (id = (select auth.uid()));

create policy org_users_member_select on public.org_users
  for select to authenticated
  using (org_id in (select public.user_org_ids()));

create policy phone_numbers_tenant_isolation on public.phone_numbers
  for all to authenticated
  using (org_id in (select ou.org_id from public.org_users ou where ou.user_id = (select auth.uid())))
  with check (org_id in (select ou.org_id from public.org_users ou where ou.user_id = (select auth.uid())));
create policy calls_tenant_isolation on public.calls
  for all to authenticated
  using (org_id in (select ou.org_id from public.org_users ou where ou.user_id = (select auth.uid())))
  with check (org_id in (select ou.org_id from public.org_users ou where ou.user_id = (select auth.uid())));
create policy recordings_tenant_isolation on public.recordings
  for all to authenticated
  using (org_id in (select ou.org_id from public.org_users ou where ou.user_id = (select auth.uid())))
  with check (org_id in (select ou.org_id from public.org_users ou where ou.user_id = (select auth.uid())));
create policy billing_records_tenant_isolation on public.billing_records
  for all to authenticated
  using (org_id in (select ou.org_id from public.org_users ou where ou.user_id = (select auth.uid())))
  with check (org_id in (select ou.org_id from public.org_users ou where ou.user_id = (select auth.uid())));
create policy invoices_tenant_isolation on public.invoices
  for all to authenticated
  using (org_id in (select ou.org_id from public.org_users ou where ou.user_id = (select auth.uid())))
  with check (org_id in (select ou.org_id from public.org_users ou where ou.user_id = (select auth.uid())));
create policy sms_messages_tenant_isolation on public.sms_messages
  for all to authenticated
  using (org_id in (select ou.org_id from public.org_users ou where ou.user_id = (select auth.uid())))
  with check (org_id in (select ou.org_id from public.org_users ou where ou.user_id = (select auth.uid())));
create policy archives_tenant_isolation on public.archives
  for all to authenticated
  using (org_id in (select ou.org_id from public.org_users ou where ou.user_id = (select auth.uid())))
  with check (org_id in (select ou.org_id from public.org_users ou where ou.user_id = (select auth.uid())));

-- Internal tables: only the service role (which bypasses RLS anyway) works on
-- them; the policy documents that and keeps "RLS enabled without a policy"
-- reserved for real mistakes.
create policy call_archives_service_role_only on public.call_archives
  for all to service_role
  using ((select auth.role()) = 'service_role')
  with check ((select auth.role()) = 'service_role');
create policy sms_archives_service_role_only on public.sms_archives
  for all to service_role
  using ((select auth.role()) = 'service_role')
  with check ((select auth.role()) = 'service_role');
create policy db_metrics_service_role_only on public.db_metrics
  for all to service_role
  using ((select auth.role()) = 'service_role')
  with check ((select auth.role()) = 'service_role');

-- Grants. Nothing for anon: the app has no public (logged-out) data.
grant usage on schema public to anon, authenticated, service_role;
revoke all on all tables in schema public from anon;
revoke all on all sequences in schema public from anon;
grant select, insert, update, delete on
  public.organizations, public.profiles, public.org_users, public.phone_numbers,
  public.calls, public.recordings, public.billing_records, public.invoices,
  public.sms_messages, public.archives
  to authenticated, service_role;
grant select, insert, update, delete on
  public.call_archives, public.sms_archives, public.db_metrics
  to service_role;
grant usage, select on sequence public.db_metrics_id_seq to service_role;

reset role;
