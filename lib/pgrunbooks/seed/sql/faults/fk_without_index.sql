-- fk_without_index: a foreign key column that no index leads with.
-- Plants: column public.invoices.billing_record_id with foreign key invoices_billing_record_id_fkey
--   -> public.billing_records (id), filled for every invoice, and no index on it: every delete
--   on billing_records scans invoices.
-- Found by: fk_without_index.

set local role postgres;

alter table public.invoices add column billing_record_id uuid
  constraint invoices_billing_record_id_fkey references public.billing_records (id) on delete set null;

update public.invoices i
set billing_record_id = (select b.id from public.billing_records b
                         where b.org_id = i.org_id and b.created_at < i.issued_at
                         order by b.created_at desc limit 1);
