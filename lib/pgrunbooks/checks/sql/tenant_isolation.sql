-- tenant_isolation (discovery): the tenant tables of %(schemas)s: the tenant table itself (%(tenant_table)s)
--   and every table with a %(tenant_column)s column; with RLS flags, the single-column primary key the
--   probes fetch rows by, the API roles' SELECT privilege, whether row level security applies to the
--   connected role (then it cannot sample other tenants' rows), and the permissive SELECT policies that
--   apply to authenticated / anon (with their names, commands and USING expressions: the probe evaluates
--   each expression on the foreign rows a member saw, to name the policy that admits them).
-- Privileges: none for discovery; sampling needs SELECT and no RLS for the connected role (BYPASSRLS,
--   like postgres on Supabase); the probes need membership in authenticated and anon to SET ROLE.
-- Caveats: tables reaching the tenant only through another table (no tenant column) are not probed.
--   Restrictive policies are not listed (they can only hide rows; the own-rows probe sees their effect).
--   A permissive policy without a USING expression admits no rows (the server adds nothing for it).
with api as (
  select (select r.oid from pg_catalog.pg_roles r where r.rolname = 'anon') as anon,
         (select r.oid from pg_catalog.pg_roles r where r.rolname = 'authenticated') as authenticated
),
tenant as (
  select pg_catalog.to_regclass(%(tenant_table)s) as oid
),
tables as (
  select c.oid, n.nspname, c.relname, c.relrowsecurity,
         (select a.attname from pg_catalog.pg_constraint k
          join pg_catalog.pg_attribute a on a.attrelid = k.conrelid and a.attnum = k.conkey[1]
          where k.conrelid = c.oid and k.contype = 'p' and cardinality(k.conkey) = 1) as pk_column,
         c.oid = (select oid from tenant) as is_tenant_table
  from pg_catalog.pg_class c
  join pg_catalog.pg_namespace n on n.oid = c.relnamespace
  where c.relkind in ('r', 'p')
    and not c.relispartition
    and n.nspname = any (%(schemas)s::text[])
    and (c.oid = (select oid from tenant)
         or exists (select 1 from pg_catalog.pg_attribute a
                    where a.attrelid = c.oid and a.attname = %(tenant_column)s and a.attnum > 0 and not a.attisdropped))
)
select t.nspname::text as schema,
       t.relname::text as table,
       pg_catalog.format('%%I.%%I', t.nspname, t.relname) as name,
       case when t.is_tenant_table then t.pk_column else %(tenant_column)s end::text as key_column,
       t.pk_column::text as pk_column,
       t.is_tenant_table,
       t.relrowsecurity as rls_enabled,
       pg_catalog.has_table_privilege(t.oid, 'select') and not pg_catalog.row_security_active(t.oid) as sampleable,
       coalesce(pg_catalog.has_any_column_privilege(api.authenticated, t.oid, 'select'), false) as authenticated_select,
       coalesce(pg_catalog.has_any_column_privilege(api.anon, t.oid, 'select'), false) as anon_select,
       pol.authenticated_policies,
       pol.authenticated_open_policies,
       pol.authenticated_policy_names,
       pol.authenticated_policy_commands,
       pol.authenticated_policy_exprs,
       pol.anon_policies,
       pol.anon_open_policies,
       pol.anon_policy_names,
       pol.anon_policy_commands,
       pol.anon_policy_exprs
from tables t
cross join api
cross join lateral (
  -- the permissive SELECT policies that apply to each API role, each as "name: using", the names of
  -- those that are simply true, and each one's name, command and expression
  select coalesce(array_agg(q.described order by q.polname) filter (where q.authenticated), '{}') as authenticated_policies,
         coalesce(array_agg(q.polname::text order by q.polname) filter (where q.authenticated and q.open), '{}')
           as authenticated_open_policies,
         coalesce(array_agg(q.polname::text order by q.polname) filter (where q.authenticated), '{}')
           as authenticated_policy_names,
         coalesce(array_agg(q.command order by q.polname) filter (where q.authenticated), '{}')
           as authenticated_policy_commands,
         coalesce(array_agg(q.using_expr order by q.polname) filter (where q.authenticated), '{}')
           as authenticated_policy_exprs,
         coalesce(array_agg(q.described order by q.polname) filter (where q.anon), '{}') as anon_policies,
         coalesce(array_agg(q.polname::text order by q.polname) filter (where q.anon and q.open), '{}')
           as anon_open_policies,
         coalesce(array_agg(q.polname::text order by q.polname) filter (where q.anon), '{}') as anon_policy_names,
         coalesce(array_agg(q.command order by q.polname) filter (where q.anon), '{}') as anon_policy_commands,
         coalesce(array_agg(q.using_expr order by q.polname) filter (where q.anon), '{}') as anon_policy_exprs
  from (select p.polname,
               pg_catalog.pg_get_expr(p.polqual, p.polrelid) as using_expr,
               pg_catalog.format('%%I: %%s', p.polname,
                                 coalesce(pg_catalog.pg_get_expr(p.polqual, p.polrelid), '(no using: admits no rows)'))
                 as described,
               coalesce(lower(pg_catalog.pg_get_expr(p.polqual, p.polrelid)) = 'true', false) as open,
               case p.polcmd when 'r' then 'select' else 'all' end as command,
               coalesce(0 = any (p.polroles) or api.authenticated = any (p.polroles), false) as authenticated,
               coalesce(0 = any (p.polroles) or api.anon = any (p.polroles), false) as anon
        from pg_catalog.pg_policy p
        where p.polrelid = t.oid and p.polpermissive and p.polcmd in ('r', '*')) q
) pol
where t.pk_column is not null
order by name
