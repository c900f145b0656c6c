-- exposed_foreign_table: the old billing system's invoices, attached with postgres_fdw in public.
-- Plants: extension postgres_fdw in schema extensions, server legacy_billing (host
--   legacy-billing.internal; never connected to), both the platform admin's, and foreign table
--   public.legacy_invoices (id, org_id, amount, issued_at) owned by postgres, select granted to
--   authenticated.
-- Found by: foreign_tables_exposed.

create extension if not exists postgres_fdw with schema extensions;
create server legacy_billing foreign data wrapper postgres_fdw
  options (host 'legacy-billing.internal', dbname 'billing');
create foreign table public.legacy_invoices (
  id bigint,
  org_id uuid,
  amount numeric(12, 2),
  issued_at timestamptz
) server legacy_billing options (schema_name 'public', table_name 'invoices');
alter foreign table public.legacy_invoices owner to postgres;

set local role postgres;

grant select on public.legacy_invoices to authenticated;
