-- orphaned_rows probe: does any of the six tables hold a row whose parent row is gone?
select exists (select 1 from public.phone_numbers x where x.org_id is not null
               and not exists (select 1 from public.organizations o where o.id = x.org_id))
    or exists (select 1 from public.org_users x where x.org_id is not null
               and not exists (select 1 from public.organizations o where o.id = x.org_id))
    or exists (select 1 from public.invoices x where x.org_id is not null
               and not exists (select 1 from public.organizations o where o.id = x.org_id))
    or exists (select 1 from public.calls x where x.org_id is not null
               and not exists (select 1 from public.organizations o where o.id = x.org_id))
    or exists (select 1 from public.sms_messages x where x.org_id is not null
               and not exists (select 1 from public.organizations o where o.id = x.org_id))
    or exists (select 1 from public.recordings x where x.call_id is not null
               and not exists (select 1 from public.calls c where c.id = x.call_id))
