-- policy_initplan: RLS policies calling auth.uid(), auth.jwt(), auth.role(), auth.email() or
--   current_setting() other than as a scalar sub-select "(select auth.uid())": such a call is
--   evaluated for every row (or every row of a sub-query), the wrapped one once per statement (InitPlan).
-- Privileges: none.
-- Caveats: the expressions are read with pg_get_expr under search_path = pg_catalog, so the auth functions
--   print schema-qualified; a call counts as wrapped when it directly follows "SELECT" (possibly behind
--   opening parentheses, e.g. "(select (auth.jwt() ->> 'sub'))").
with p as (
  select n.nspname, c.relname, p.polname, p.polcmd, p.polpermissive,
         coalesce(pg_catalog.pg_get_expr(p.polqual, p.polrelid), '') as using_expr,
         coalesce(pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid), '') as check_expr,
         array(select case when r = 0 then 'public' else pg_catalog.pg_get_userbyid(r)::text end
               from unnest(p.polroles) r order by 1) as roles
  from pg_catalog.pg_policy p
  join pg_catalog.pg_class c on c.oid = p.polrelid
  join pg_catalog.pg_namespace n on n.oid = c.relnamespace
  where n.nspname = any (%(schemas)s::text[])
),
r as (
  select p.*,
         regexp_replace(p.using_expr || ' ' || p.check_expr,
                        'SELECT\s+\(*\s*(auth\.(uid|jwt|role|email)|current_setting)\(', 'SELECT wrapped(', 'gi')
           as residual
  from p
)
select r.nspname::text as schema,
       r.relname::text as table,
       pg_catalog.format('%%I.%%I.%%I', r.nspname, r.relname, r.polname) as name,
       r.polname::text as policy,
       case r.polcmd when 'r' then 'select' when 'a' then 'insert' when 'w' then 'update'
                     when 'd' then 'delete' else 'all' end as command,
       r.roles,
       array(select distinct m[1] from regexp_matches(r.residual, '(auth\.(?:uid|jwt|role|email)|current_setting)\(', 'gi') m
             order by 1) as unwrapped_calls,
       r.using_expr,
       r.check_expr
from r
where r.residual ~* '(auth\.(uid|jwt|role|email)|current_setting)\('
order by name
