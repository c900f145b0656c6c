-- auth_users_view probe: public.member_directory exists and authenticated can select it.
select pg_catalog.to_regclass('public.member_directory') is not null
       and has_table_privilege('authenticated', 'public.member_directory', 'select')
