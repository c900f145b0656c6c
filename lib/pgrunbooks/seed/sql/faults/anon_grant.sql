-- anon_grant: "the number picker on the signup page needs it".
-- Plants: grant select on public.phone_numbers to anon, and a policy `policy` on public.phone_numbers
--   for select to anon using (true): logged-out visitors (the public API key) list every
--   organization's phone numbers.
-- Found by: anon_grants (also, legitimately, policy_always_true and tenant_isolation).
-- Identifiers: policy (the anon policy).

set local role postgres;

grant select on public.phone_numbers to anon;
create policy {policy} on public.phone_numbers for select to anon using (true);
