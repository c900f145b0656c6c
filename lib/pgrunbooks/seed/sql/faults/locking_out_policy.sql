-- locking_out_policy: the guide's "fix" for a leaking tenant policy, which compares the tenant column with
--   the user's id and so hides every row from every member.
-- Plants: policy policy on public.invoices rewritten as using / with check
--   (org_id::text = (select auth.uid())::text): no organization id is ever a user id.
-- Found by: tenant_isolation (a member sees none of their own organization's invoices).
-- Identifiers: policy (the tenant policy of public.invoices).

set local role postgres;

alter policy {policy} on public.invoices
  using (org_id::text = (select auth.uid())::text)
  with check (org_id::text = (select auth.uid())::text);
