-- fk_without_index probe: the foreign key exists and no index of public.invoices leads with its column.
select exists (select 1 from pg_catalog.pg_constraint c
               where c.conname = 'invoices_billing_record_id_fkey'
                 and c.conrelid = to_regclass('public.invoices'))
   and not exists (select 1 from pg_catalog.pg_index i
                   where i.indrelid = to_regclass('public.invoices')
                     and i.indkey[0] = (select a.attnum from pg_catalog.pg_attribute a
                                        where a.attrelid = to_regclass('public.invoices')
                                          and a.attname = 'billing_record_id'))
