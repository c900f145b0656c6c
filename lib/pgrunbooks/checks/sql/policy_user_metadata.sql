-- policy_user_metadata: policies on tables in the exposed schemas (%(exposed_schemas)s) whose USING or
--   WITH CHECK expression reads user_metadata from the JWT or raw_user_meta_data from auth.users
--   (splinter 0015): the signed-in user writes both (supabase.auth.updateUser).
-- Privileges: none (catalogs only).
-- Caveats: matched on the expression text pg_get_expr prints, so a policy calling a function that
--   reads user_metadata is not seen.
select n.nspname::text as schema,
       c.relname::text as table,
       p.polname::text as policy,
       pg_catalog.format('%%I.%%I.%%I', n.nspname, c.relname, p.polname) as name,
       case p.polcmd when 'r' then 'select' when 'a' then 'insert' when 'w' then 'update'
                     when 'd' then 'delete' else 'all' end as command,
       p.polpermissive as permissive,
       case when 0 = any (p.polroles) then array['public']
            else array(select pg_catalog.quote_ident(r.rolname) from pg_catalog.pg_roles r
                       where r.oid = any (p.polroles) order by r.rolname) end as roles,
       pg_catalog.pg_get_expr(p.polqual, p.polrelid) as using_expr,
       pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid) as check_expr
from pg_catalog.pg_policy p
join pg_catalog.pg_class c on c.oid = p.polrelid
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
where n.nspname = any (%(exposed_schemas)s::text[])
  and (coalesce(pg_catalog.pg_get_expr(p.polqual, p.polrelid), '')
       || ' ' || coalesce(pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid), '')) ~ '(user_metadata|raw_user_meta_data)'
order by name
