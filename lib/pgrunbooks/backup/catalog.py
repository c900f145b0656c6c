"""What a restore must reproduce besides rows, read from the catalog: roles, grants, RLS flags, policies,
SECURITY DEFINER functions, extensions, constraints and sequences.

The same queries run on the source (inside the dump's snapshot) and on the restored copy; each
returns plain JSON-able rows in a deterministic order, keyed so :mod:`pgrunbooks.backup.verify`
can name the object that differs. System schemas and extension members are left out: an
extension brings its own objects back when it is created.
"""

from __future__ import annotations

from typing import Any

#: schemas no backup verification looks into
_USER_NAMESPACE = """
    n.nspname not in ('pg_catalog', 'information_schema', 'pg_toast')
    and n.nspname !~ '^pg_(toast|temp)'
    and not exists (select from pg_catalog.pg_depend d
                    where d.classid = 'pg_catalog.pg_namespace'::regclass and d.objid = n.oid and d.deptype = 'e')
"""


def _not_extension_member(catalog: str, oid: str) -> str:
    return (f"not exists (select from pg_catalog.pg_depend d where d.classid = '{catalog}'::regclass "
            f"and d.objid = {oid} and d.deptype = 'e')")


ROLES = """
select r.rolname::text as name, r.rolsuper as superuser, r.rolinherit as inherit, r.rolcreaterole as createrole,
       r.rolcreatedb as createdb, r.rolcanlogin as login, r.rolreplication as replication, r.rolbypassrls as bypassrls,
       array(select g.rolname::text from pg_catalog.pg_auth_members m
             join pg_catalog.pg_roles g on g.oid = m.roleid
             where m.member = r.oid order by 1) as member_of
from pg_catalog.pg_roles r
where r.rolname !~ '^pg_'
order by r.rolname
"""

GRANTS = f"""
with objects as (
  select pg_catalog.format('%s %I.%I', case c.relkind when 'S' then 'sequence' when 'v' then 'view'
                                         when 'm' then 'materialized view' else 'table' end,
                           n.nspname, c.relname) as object,
         coalesce(c.relacl, pg_catalog.acldefault((case c.relkind when 'S' then 's' else 'r' end)::"char", c.relowner)) as acl
  from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
  where c.relkind in ('r', 'p', 'v', 'm', 'S', 'f') and {_USER_NAMESPACE}
    and {_not_extension_member('pg_catalog.pg_class', 'c.oid')}
  union all
  select pg_catalog.format('schema %I', n.nspname), coalesce(n.nspacl, pg_catalog.acldefault('n'::"char", n.nspowner))
  from pg_catalog.pg_namespace n where {_USER_NAMESPACE}
  union all
  select 'function ' || p.oid::pg_catalog.regprocedure::text,
         coalesce(p.proacl, pg_catalog.acldefault('f'::"char", p.proowner))
  from pg_catalog.pg_proc p join pg_catalog.pg_namespace n on n.oid = p.pronamespace
  where {_USER_NAMESPACE} and {_not_extension_member('pg_catalog.pg_proc', 'p.oid')}
)
select o.object, case when a.grantee = 0 then 'public' else a.grantee::pg_catalog.regrole::text end as grantee,
       a.privilege_type::text as privilege, a.is_grantable as grantable
from objects o cross join lateral pg_catalog.aclexplode(o.acl) a
order by 1, 2, 3, 4
"""

RLS = f"""
select pg_catalog.format('%I.%I', n.nspname, c.relname) as table, c.relrowsecurity as rls,
       c.relforcerowsecurity as force_rls
from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
where c.relkind in ('r', 'p') and {_USER_NAMESPACE} and {_not_extension_member('pg_catalog.pg_class', 'c.oid')}
order by 1
"""

POLICIES = f"""
select pg_catalog.format('%I.%I.%I', n.nspname, c.relname, p.polname) as policy, p.polpermissive as permissive,
       p.polcmd::text as command,
       array(select case when r = 0 then 'public' else r::pg_catalog.regrole::text end
             from pg_catalog.unnest(p.polroles) r order by 1) as roles,
       pg_catalog.pg_get_expr(p.polqual, p.polrelid) as using_expr,
       pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid) as check_expr
from pg_catalog.pg_policy p
join pg_catalog.pg_class c on c.oid = p.polrelid
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
where {_USER_NAMESPACE}
order by 1
"""

DEFINER_FUNCTIONS = f"""
select p.oid::pg_catalog.regprocedure::text as function, p.proowner::pg_catalog.regrole::text as owner,
       coalesce(array(select s from pg_catalog.unnest(p.proconfig) s where s like 'search\\_path=%' order by 1),
                '{{}}') as search_path,
       pg_catalog.md5(p.prosrc) as body_md5
from pg_catalog.pg_proc p join pg_catalog.pg_namespace n on n.oid = p.pronamespace
where p.prosecdef and {_USER_NAMESPACE} and {_not_extension_member('pg_catalog.pg_proc', 'p.oid')}
order by 1
"""

EXTENSIONS = """
select e.extname::text as extension, e.extversion::text as version, n.nspname::text as schema
from pg_catalog.pg_extension e join pg_catalog.pg_namespace n on n.oid = e.extnamespace
order by 1
"""

CONSTRAINTS = f"""
select pg_catalog.format('%I.%I.%I', n.nspname, c.relname, k.conname) as constraint,
       pg_catalog.format('%I.%I', n.nspname, c.relname) as table,
       k.contype::text as type, k.convalidated as validated,
       pg_catalog.pg_get_constraintdef(k.oid) as definition,
       k.conkey::int[] as columns, k.confkey::int[] as ref_columns,
       case when k.confrelid <> 0 then k.confrelid::pg_catalog.regclass::text end as ref_table,
       array(select a.attname::text from pg_catalog.unnest(k.conkey) with ordinality u(att, i)
             join pg_catalog.pg_attribute a on a.attrelid = k.conrelid and a.attnum = u.att order by u.i) as column_names,
       array(select a.attname::text from pg_catalog.unnest(k.confkey) with ordinality u(att, i)
             join pg_catalog.pg_attribute a on a.attrelid = k.confrelid and a.attnum = u.att order by u.i)
         as ref_column_names,
       n.nspname::text as schema_name, c.relname::text as table_name,
       rn.nspname::text as ref_schema_name, rc.relname::text as ref_table_name
from pg_catalog.pg_constraint k
join pg_catalog.pg_class c on c.oid = k.conrelid
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
left join pg_catalog.pg_class rc on rc.oid = k.confrelid
left join pg_catalog.pg_namespace rn on rn.oid = rc.relnamespace
where k.contype in ('p', 'u', 'f', 'c', 'x') and {_USER_NAMESPACE}
  and {_not_extension_member('pg_catalog.pg_class', 'c.oid')}
order by 1
"""

SEQUENCES = f"""
select pg_catalog.format('%I.%I', n.nspname, s.relname) as sequence, q.last_value,
       oc.nspname::text as table_schema, t.relname::text as table_name, a.attname::text as column_name
from pg_catalog.pg_class s
join pg_catalog.pg_namespace n on n.oid = s.relnamespace
join pg_catalog.pg_sequences q on q.schemaname = n.nspname and q.sequencename = s.relname
left join pg_catalog.pg_depend d on d.classid = 'pg_catalog.pg_class'::regclass and d.objid = s.oid
     and d.refclassid = 'pg_catalog.pg_class'::regclass and d.deptype in ('a', 'i') and d.refobjsubid > 0
left join pg_catalog.pg_class t on t.oid = d.refobjid
left join pg_catalog.pg_namespace oc on oc.oid = t.relnamespace
left join pg_catalog.pg_attribute a on a.attrelid = d.refobjid and a.attnum = d.refobjsubid
where s.relkind = 'S' and {_USER_NAMESPACE} and {_not_extension_member('pg_catalog.pg_class', 's.oid')}
order by 1
"""

#: section name -> (query, key column): what the manifest keeps and verify compares
SECTIONS: dict[str, tuple[str, str]] = {
    "roles": (ROLES, "name"),
    "grants": (GRANTS, "object"),
    "rls": (RLS, "table"),
    "policies": (POLICIES, "policy"),
    "definer_functions": (DEFINER_FUNCTIONS, "function"),
    "extensions": (EXTENSIONS, "extension"),
    "constraints": (CONSTRAINTS, "constraint"),
    "sequences": (SEQUENCES, "sequence"),
}


def capture(cur) -> dict[str, list[dict[str, Any]]]:
    """Every section of :data:`SECTIONS`, read with ``cur`` (a dict-row cursor) in its transaction."""
    # names print schema-qualified whatever the caller's search_path (regprocedure, regclass)
    cur.execute("select set_config('search_path', 'pg_catalog', true)")
    out: dict[str, list[dict[str, Any]]] = {}
    for name, (query, _key) in SECTIONS.items():
        cur.execute(query)
        out[name] = [dict(row) for row in cur.fetchall()]
    return out
