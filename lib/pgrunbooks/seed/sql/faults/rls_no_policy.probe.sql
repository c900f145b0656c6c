-- rls_no_policy probe: public.call_notes has row level security on and no policy at all.
select c.relrowsecurity and not exists (select 1 from pg_catalog.pg_policy p where p.polrelid = c.oid)
from pg_catalog.pg_class c
where c.oid = to_regclass('public.call_notes')
