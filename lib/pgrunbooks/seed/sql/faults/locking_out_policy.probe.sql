-- locking_out_policy probe: the tenant policy of public.invoices compares org_id with auth.uid() and no
--   longer goes through the memberships.
select exists (
  select 1 from pg_catalog.pg_policies p
  where p.schemaname = 'public' and p.tablename = 'invoices' and p.policyname = %(policy)s
    and p.qual like '%%(org_id)::text%%auth.uid()%%' and p.qual not like '%%org_users%%')
