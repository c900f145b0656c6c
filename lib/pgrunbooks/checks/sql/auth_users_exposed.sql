-- auth_users_exposed: views and materialized views in the exposed schemas (%(exposed_schemas)s) that read
--   auth.users (splinter 0002), whether anon / authenticated can select them, and whether they run as
--   the caller (security_invoker views; a materialized view never does).
-- Privileges: none (catalogs only).
-- Caveats: the dependency is read from the view's rewrite rule (pg_depend), so a view reading
--   auth.users through another view is reported where it reads it directly.
with api as (
  select (select r.oid from pg_catalog.pg_roles r where r.rolname = 'anon') as anon,
         (select r.oid from pg_catalog.pg_roles r where r.rolname = 'authenticated') as authenticated
),
users as (
  -- from the catalog, not to_regclass: a role without USAGE on schema auth may still run this
  select (select c.oid from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
          where n.nspname = 'auth' and c.relname = 'users' and c.relkind in ('r', 'p')) as oid
)
select n.nspname::text as schema,
       c.relname::text as view,
       pg_catalog.format('%%I.%%I', n.nspname, c.relname) as name,
       case c.relkind when 'v' then 'view' else 'materialized view' end as kind,
       c.relkind = 'v' and coalesce(c.reloptions && array['security_invoker=true', 'security_invoker=on',
                                                         'security_invoker=1', 'security_invoker=yes'], false)
         as security_invoker,
       pg_catalog.pg_get_userbyid(c.relowner)::text as owner,
       array_remove(array[
         case when pg_catalog.has_any_column_privilege(api.anon, c.oid, 'select') then 'anon' end,
         case when pg_catalog.has_any_column_privilege(api.authenticated, c.oid, 'select') then 'authenticated' end
       ], null) as api_select,
       array_remove(array[
         case when pg_catalog.has_any_column_privilege(api.anon, users.oid, 'select') then 'anon' end,
         case when pg_catalog.has_any_column_privilege(api.authenticated, users.oid, 'select') then 'authenticated' end
       ], null) as api_select_users
from pg_catalog.pg_class c
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
cross join api
cross join users
where c.relkind in ('v', 'm')
  and users.oid is not null
  and n.nspname = any (%(exposed_schemas)s::text[])
  and exists (select 1 from pg_catalog.pg_rewrite w
              join pg_catalog.pg_depend d on d.classid = 'pg_catalog.pg_rewrite'::regclass and d.objid = w.oid
              where w.ev_class = c.oid and d.refclassid = 'pg_catalog.pg_class'::regclass
                and d.refobjid = users.oid)
order by name
