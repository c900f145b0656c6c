-- uid_without_select probe: a policy of public.sms_messages calls auth.uid() outside a
--   (select auth.uid()) sub-select (pg_policies prints that as `( SELECT auth.uid() AS uid)`).
select exists (
  select 1 from pg_catalog.pg_policies p
  where p.schemaname = 'public' and p.tablename = 'sms_messages'
    and (regexp_replace(coalesce(p.qual, ''), 'SELECT auth\.uid\(\)', '', 'gi') ~ 'auth\.uid\(\)'
         or regexp_replace(coalesce(p.with_check, ''), 'SELECT auth\.uid\(\)', '', 'gi') ~ 'auth\.uid\(\)'))
