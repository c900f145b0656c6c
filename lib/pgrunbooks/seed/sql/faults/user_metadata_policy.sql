-- user_metadata_policy: "only admins delete invoices", decided on what the user says they are.
-- Plants: a restrictive policy `policy` on public.invoices for delete to authenticated using
--   ((select auth.jwt()) -> 'user_metadata' ->> 'role') = 'admin': any member sets that claim on
--   themselves (supabase.auth.updateUser) and passes it.
-- Found by: policy_user_metadata.
-- Identifiers: policy.

set local role postgres;

create policy {policy} on public.invoices as restrictive for delete to authenticated
  using ((((select auth.jwt()) -> 'user_metadata') ->> 'role') = 'admin');
