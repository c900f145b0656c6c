-- multiple_permissive_policies: tables in the exposed schemas (%(exposed_schemas)s) where two or more
--   permissive policies apply to the same role and action; a policy "to public" counts for anon and
--   authenticated, "for all" for select, insert, update and delete.
-- Privileges: none.
-- Caveats: permissive policies are OR-ed and every one is evaluated for each row (splinter 0006): a
--   performance cost, and a leak when one of them is wider than the tenant (the evaluator asks
--   tenant_isolation's live probe which). Restrictive policies are not counted. mergeable: every policy
--   of the pair applies to this one role and action, so one policy OR-ing their expressions replaces them;
--   members: each policy's command, roles ('public' as written) and expressions, so a "for all" or
--   multi-role policy can be split into the parts that serve other roles and actions.
with pol as (
  select p.polrelid, p.polname::text as policy, p.polcmd,
         pg_catalog.pg_get_expr(p.polqual, p.polrelid) as using_expr,
         pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid) as check_expr,
         case when 0 = any (p.polroles) then array['anon', 'authenticated']
              else array(select r.rolname::text from pg_catalog.pg_roles r where r.oid = any (p.polroles)
                         order by r.rolname) end
           as roles,
         case when 0 = any (p.polroles) then array['public']
              else array(select r.rolname::text from pg_catalog.pg_roles r where r.oid = any (p.polroles)
                         order by r.rolname) end
           as granted_to
  from pg_catalog.pg_policy p
  join pg_catalog.pg_class c on c.oid = p.polrelid
  join pg_catalog.pg_namespace n on n.oid = c.relnamespace
  where p.polpermissive and n.nspname = any (%(exposed_schemas)s::text[])
),
expanded as (
  select pol.polrelid, pol.policy, role, action,
         -- the policy applies to this role and action only: it can be merged away without changing others
         (pol.polcmd <> '*' and cardinality(pol.roles) = 1) as single, pol.using_expr, pol.check_expr,
         pol.polcmd::text as command, pol.granted_to
  from pol
  cross join lateral unnest(pol.roles) role
  cross join lateral unnest(case pol.polcmd when '*' then array['select', 'insert', 'update', 'delete']
                                            when 'r' then array['select'] when 'a' then array['insert']
                                            when 'w' then array['update'] when 'd' then array['delete'] end) action
)
select n.nspname::text as schema,
       c.relname::text as table,
       pg_catalog.format('%%I.%%I', n.nspname, c.relname) as name,
       e.role,
       e.action,
       array_agg(e.policy order by e.policy) as policies,
       bool_and(e.single) as mergeable,
       array_agg(e.using_expr order by e.policy) as using_exprs,
       array_agg(e.check_expr order by e.policy) as check_exprs,
       jsonb_agg(jsonb_build_object('policy', e.policy, 'command', e.command, 'roles', e.granted_to,
                                    'using', e.using_expr, 'check', e.check_expr) order by e.policy) as members
from expanded e
join pg_catalog.pg_class c on c.oid = e.polrelid
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
group by n.nspname, c.relname, e.role, e.action
having count(*) > 1
order by name, e.role, e.action
