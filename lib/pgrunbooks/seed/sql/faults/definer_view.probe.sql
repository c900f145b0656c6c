-- definer_view probe: public.org_call_summary exists, is not security_invoker and authenticated can select it.
select pg_catalog.to_regclass('public.org_call_summary') is not null
       and not exists (select 1 from pg_catalog.pg_class c
                       where c.oid = pg_catalog.to_regclass('public.org_call_summary')
                         and c.reloptions && array['security_invoker=true', 'security_invoker=on'])
       and has_table_privilege('authenticated', 'public.org_call_summary', 'select')
