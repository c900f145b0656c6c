-- policy_without_rls probe: public.announcements has the policy `policy` and row level security disabled.
select exists (select 1 from pg_catalog.pg_policies p
               where p.schemaname = 'public' and p.tablename = 'announcements'
                 and quote_ident(p.policyname) = %(policy)s)
       and not (select c.relrowsecurity from pg_catalog.pg_class c
                where c.oid = pg_catalog.to_regclass('public.announcements'))
