-- user_metadata_policy probe: the policy `policy` is on public.invoices.
select exists (select 1 from pg_catalog.pg_policies p
               where p.schemaname = 'public' and p.tablename = 'invoices'
                 and quote_ident(p.policyname) = %(policy)s)
