-- exposed_foreign_table probe: foreign table public.legacy_invoices exists and authenticated can select it.
select exists (select 1 from pg_catalog.pg_foreign_table f
               where f.ftrelid = pg_catalog.to_regclass('public.legacy_invoices'))
       and has_table_privilege('authenticated', 'public.legacy_invoices', 'select')
