-- extra_superuser probe: the role `role` exists, can log in and is a superuser.
select exists (select 1 from pg_catalog.pg_roles r
               where r.oid = to_regrole(%(role)s) and r.rolsuper and r.rolcanlogin)
