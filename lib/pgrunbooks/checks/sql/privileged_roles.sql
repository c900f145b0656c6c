-- privileged_roles: roles that are superusers, bypass row level security, or may SET ROLE to a superuser
--   (membership), with whether they can log in; the expected ones (%(expected)s and the bootstrap
--   superuser) are marked.
-- Privileges: none (pg_roles, pg_auth_members).
-- Caveats: cluster-wide: the same roles are seen from every database.
with supers as (
  select r.oid, r.rolname from pg_catalog.pg_roles r where r.rolsuper
)
select r.rolname::text as role,
       r.rolsuper as superuser,
       r.rolbypassrls as bypassrls,
       r.rolcanlogin as can_login,
       r.rolreplication as replication,
       r.oid = 10 as bootstrap,
       r.rolname = any (%(expected)s::text[]) or r.oid = 10 as expected,
       array(select s.rolname::text from supers s
             where s.oid <> r.oid and pg_catalog.pg_has_role(r.oid, s.oid, 'member')
             order by 1) as member_of_superusers,
       r.rolvaliduntil as valid_until
from pg_catalog.pg_roles r
where r.rolsuper
   or r.rolbypassrls
   or (not r.rolsuper and exists (select 1 from supers s where s.oid <> r.oid
                                  and pg_catalog.pg_has_role(r.oid, s.oid, 'member')))
order by r.rolname
