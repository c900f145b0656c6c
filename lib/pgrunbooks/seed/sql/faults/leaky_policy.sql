-- leaky_policy: the dashboard's "Enable read access for all users" template, added next to the
--   tenant policy of public.billing_records.
-- Plants: a policy `policy` on public.billing_records, for select to authenticated using (true).
--   Permissive policies are OR-ed: every logged-in user now reads every org's billing.
-- Found by: policy_always_true (the true qual), tenant_isolation (a member sees other orgs' rows).
-- Identifiers: policy.

set local role postgres;

create policy {policy} on public.billing_records for select to authenticated using (true);
