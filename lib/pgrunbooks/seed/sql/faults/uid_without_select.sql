-- uid_without_select: a tenant policy that calls auth.uid() per row.
-- Plants: policy policy on public.sms_messages rewritten with a bare auth.uid() instead of
--   (select auth.uid()): still tenant-correct, but evaluated for every row, not once (an InitPlan).
-- Found by: policy_initplan.
-- Identifiers: policy (the tenant policy of public.sms_messages).

set local role postgres;

alter policy {policy} on public.sms_messages
  using (org_id in (select ou.org_id from public.org_users ou where ou.user_id = auth.uid()))
  with check (org_id in (select ou.org_id from public.org_users ou where ou.user_id = auth.uid()));
