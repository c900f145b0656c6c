-- policy_always_true: permissive policies whose USING or WITH CHECK is the constant true, for anon,
--   authenticated or PUBLIC: they open the table to every logged-in user (or visitor), whatever the
--   other policies say, because permissive policies are OR-ed.
-- Privileges: none.
-- Caveats: restrictive policies with true are harmless and left out, as are policies for roles that
--   bypass RLS anyway (service_role).
with p as (
  select n.nspname, c.relname, p.polname, p.polcmd, c.relrowsecurity,
         coalesce(pg_catalog.pg_get_expr(p.polqual, p.polrelid), '') as using_expr,
         coalesce(pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid), '') as check_expr,
         array(select case when r = 0 then 'public' else pg_catalog.pg_get_userbyid(r)::text end
               from unnest(p.polroles) r order by 1) as roles
  from pg_catalog.pg_policy p
  join pg_catalog.pg_class c on c.oid = p.polrelid
  join pg_catalog.pg_namespace n on n.oid = c.relnamespace
  where p.polpermissive
    and n.nspname = any (%(schemas)s::text[])
)
select p.nspname::text as schema,
       p.relname::text as table,
       pg_catalog.format('%%I.%%I.%%I', p.nspname, p.relname, p.polname) as name,
       p.polname::text as policy,
       case p.polcmd when 'r' then 'select' when 'a' then 'insert' when 'w' then 'update'
                     when 'd' then 'delete' else 'all' end as command,
       p.roles,
       p.using_expr,
       p.check_expr,
       p.relrowsecurity as rls_enabled
from p
where (lower(p.using_expr) = 'true' or lower(p.check_expr) = 'true')
  and p.roles && array['anon', 'authenticated', 'public']
order by name
