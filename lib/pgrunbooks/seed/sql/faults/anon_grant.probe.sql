-- anon_grant probe: anon can select public.phone_numbers and the policy `policy` is there.
select has_table_privilege('anon', 'public.phone_numbers', 'select')
       and exists (select 1 from pg_catalog.pg_policies p
                   where p.schemaname = 'public' and p.tablename = 'phone_numbers'
                     and quote_ident(p.policyname) = %(policy)s)
