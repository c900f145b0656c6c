-- anon_grants: tables and views in the API-exposed schemas (%(schemas)s) on which the anon role (logged-out
--   visitors through the Data API) holds a privilege, with what protects them: RLS and the policies that
--   apply to anon.
-- Privileges: none.
-- Caveats: a view runs with its owner's privileges (unless security_invoker), so RLS of the tables under it
--   does not protect it; privileges through PUBLIC or role membership count.
with anon as (
  select (select r.oid from pg_catalog.pg_roles r where r.rolname = 'anon') as oid
)
select n.nspname::text as schema,
       c.relname::text as table,
       pg_catalog.format('%%I.%%I', n.nspname, c.relname) as name,
       case c.relkind when 'r' then 'table' when 'p' then 'table' when 'v' then 'view'
                      when 'm' then 'materialized view' when 'f' then 'foreign table' end as kind,
       array_remove(array[
         case when pg_catalog.has_any_column_privilege(anon.oid, c.oid, 'select') then 'select' end,
         case when pg_catalog.has_table_privilege(anon.oid, c.oid, 'insert') then 'insert' end,
         case when pg_catalog.has_table_privilege(anon.oid, c.oid, 'update') then 'update' end,
         case when pg_catalog.has_table_privilege(anon.oid, c.oid, 'delete') then 'delete' end,
         case when pg_catalog.has_table_privilege(anon.oid, c.oid, 'truncate') then 'truncate' end
       ], null) as privileges,
       c.relrowsecurity as rls_enabled,
       coalesce('security_invoker=true' = any (c.reloptions) or 'security_invoker=on' = any (c.reloptions), false)
         as security_invoker,
       coalesce(ap.names, '{}') as anon_policy_names,
       coalesce(ap.described, '{}') as anon_policies
from pg_catalog.pg_class c
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
cross join anon
left join lateral (
  -- the permissive policies that apply to anon: their names, and each as "name (command: expression)"
  select array_agg(p.polname::text order by p.polname) as names,
         array_agg(pg_catalog.format('%%I (%%s: %%s)', p.polname,
                                     case p.polcmd when 'r' then 'select' when 'a' then 'insert' when 'w' then 'update'
                                                   when 'd' then 'delete' else 'all' end,
                                     coalesce(pg_catalog.pg_get_expr(p.polqual, p.polrelid),
                                              pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid), ''))
                   order by p.polname) as described
  from pg_catalog.pg_policy p
  where p.polrelid = c.oid and p.polpermissive and (0 = any (p.polroles) or anon.oid = any (p.polroles))
) ap on true
where c.relkind in ('r', 'p', 'v', 'm', 'f')
  and n.nspname = any (%(schemas)s::text[])
  and anon.oid is not null
  and (pg_catalog.has_any_column_privilege(anon.oid, c.oid, 'select')
       or pg_catalog.has_table_privilege(anon.oid, c.oid, 'insert,update,delete,truncate'))
order by name
