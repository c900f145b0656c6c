-- exposed_materialized_view probe: public.monthly_sms_totals exists and authenticated can select it.
select pg_catalog.to_regclass('public.monthly_sms_totals') is not null
       and has_table_privilege('authenticated', 'public.monthly_sms_totals', 'select')
