-- leaky_policy probe: a permissive `using (true)` policy `policy` (quoted as quote_ident prints
--   it) on public.billing_records.
select exists (select 1 from pg_catalog.pg_policies p
               where p.schemaname = 'public' and p.tablename = 'billing_records'
                 and quote_ident(p.policyname) = %(policy)s
                 and p.permissive = 'PERMISSIVE' and p.qual = 'true')
