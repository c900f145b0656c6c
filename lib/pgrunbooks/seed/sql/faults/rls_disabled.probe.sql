-- rls_disabled probe: public.webhook_events exists and has row level security off.
select not c.relrowsecurity from pg_catalog.pg_class c where c.oid = to_regclass('public.webhook_events')
