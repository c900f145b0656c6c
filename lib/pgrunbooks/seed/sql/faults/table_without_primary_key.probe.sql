-- table_without_primary_key probe: public.call_event_log exists and has no primary key.
select pg_catalog.to_regclass('public.call_event_log') is not null
       and not exists (select 1 from pg_catalog.pg_constraint k
                       where k.conrelid = pg_catalog.to_regclass('public.call_event_log') and k.contype = 'p')
