"""Security: row level security, policies, privileged roles, functions (SECURITY DEFINER ones without a
search_path or callable through the API, mutable search_path in the exposed schemas), anon grants,
missing foreign keys."""

from __future__ import annotations

import re

from pgrunbooks.checks.format import plural
from pgrunbooks.checks.registry import Check, register
from pgrunbooks.checks.runner import finding, ok
from pgrunbooks.findings import Severity
from pgrunbooks.names import qualified, quote_ident

#: Schemas exposed through the Data API (PostgREST) by default on Supabase.
API_SCHEMAS = ["public"]
#: Schemas whose objects the platform manages (Supabase), left out of the function audit.
PLATFORM_SCHEMAS = [
    "auth", "storage", "realtime", "_realtime", "graphql", "graphql_public", "extensions", "vault",
    "pgsodium", "pgsodium_masks", "supabase_functions", "supabase_migrations", "net", "cron", "pgbouncer",
    "_analytics", "pgtle",
]
#: the last line of a remediation that changes what the API roles see
RECHECK = ("-- Then check again: pgrunbooks check --category security,tenant "
           "(tenant_isolation reads the tables as the API roles do).")
#: Superusers / BYPASSRLS roles a Supabase project is expected to have (plus the bootstrap superuser).
EXPECTED_PRIVILEGED = ["supabase_admin", "postgres", "service_role"]


def _rls_disabled(check, rows, t, ctx):
    out = []
    for r in rows:
        exposed = r["api_access"]
        severity = Severity.CRITICAL if exposed else Severity.WARNING
        who = (f"the API roles can reach it ({', '.join(exposed)}): every tenant's rows"
               if exposed else "no API role is granted on it today; RLS is the defence when one is")
        out.append(finding(
            check, severity, f"{r['name']} has row level security disabled", object=r["name"],
            value=", ".join(exposed) or None,
            detail=f"{who}." + (f" It has {plural(r['policies'], 'policy', 'policies')} that are ignored while RLS is off."
                               if r["policies"] else ""),
            remediation=f"alter table {r['name']} enable row level security;\n"
                        "-- Until it has a policy only its owner and BYPASSRLS roles see its rows. Then create the "
                        "tenant policy, e.g.:\n"
                        f"--   create policy {quote_ident(r['table'] + '_tenant_isolation')} on {r['name']} for all to authenticated\n"
                        "--     using (org_id in (select ou.org_id from public.org_users ou where ou.user_id = (select auth.uid())))\n"
                        "--     with check (org_id in (select ou.org_id from public.org_users ou where ou.user_id = (select auth.uid())));\n"
                        + RECHECK,
            data=r,
        ))
    return out or [ok(check, f"every table in {', '.join(t['schemas'])} has row level security enabled")]


def _rls_no_policy(check, rows, t, ctx):
    out = []
    for r in rows:
        exposed = r["api_access"]
        out.append(finding(
            check, Severity.WARNING if exposed else Severity.INFO,
            f"{r['name']} has row level security enabled but no policy", object=r["name"],
            value=", ".join(exposed) or None,
            detail=("The API roles are granted on it (" + ", ".join(exposed) + ") yet see no rows: a feature "
                    "reading it through the API returns nothing, or the policy was forgotten."
                    if exposed else "Only owners and BYPASSRLS roles can read it; write that intent down."),
            remediation="-- Write the policy it needs (a tenant policy for authenticated), or make 'service role "
                        "only' explicit:\n"
                        f"create policy {quote_ident(r['table'] + '_service_role_only')} on {r['name']} for all to service_role "
                        "using (true) with check (true);\n"
                        f"revoke all on {r['name']} from anon, authenticated;",
            data=r,
        ))
    return out or [ok(check, "every table with row level security has at least one policy")]


#: a call policy_initplan.sql flags, and what precedes a call it counts as wrapped
_AUTH_CALL = re.compile(r"(?:auth\.(?:uid|jwt|role|email)|current_setting)\([^()]*\)", re.I)
_WRAPPED = re.compile(r"SELECT\s+\(*\s*$", re.I)


def _wrap_calls(expr: str) -> str:
    """``expr`` (pg_get_expr text) with every unwrapped auth/current_setting call in a sub-select."""
    return _AUTH_CALL.sub(lambda m: m[0] if _WRAPPED.search(expr, 0, m.start()) else f"(select {m[0]})", expr)


def _initplan(check, rows, t, ctx):
    out = []
    for r in rows:
        calls = ", ".join(f"{c}()" for c in r["unwrapped_calls"])
        policy, table = quote_ident(r["policy"]), qualified(r["schema"], r["table"])
        clauses = "".join(f"\n  {clause} ({_wrap_calls(expr)})"
                          for clause, expr in (("using", r["using_expr"]), ("with check", r["check_expr"])) if expr)
        out.append(finding(
            check, Severity.WARNING, f"policy {policy} on {table} calls {calls} per row",
            object=r["name"], value=calls,
            detail=f"for {r['command']} to {', '.join(r['roles'])}: using ({r['using_expr'] or '-'})"
                   + (f" with check ({r['check_expr']})" if r["check_expr"] else "")
                   + ". Unwrapped, the function runs for every row scanned; wrapped in a sub-select it runs once "
                     "per statement (an InitPlan) and its result can use indexes.",
            remediation=f"-- The same policy, each call wrapped in (select …): evaluated once per statement.\n"
                        f"alter policy {policy} on {table}{clauses};",
            data=r,
        ))
    return out or [ok(check, "every auth.*() / current_setting() call in policies is wrapped in (select …)")]


def _always_true(check, rows, t, ctx):
    out = []
    for r in rows:
        which = " and ".join(w for w, e in (("using", r["using_expr"]), ("with check", r["check_expr"]))
                             if e.lower() == "true")
        policy, table = quote_ident(r["policy"]), qualified(r["schema"], r["table"])
        out.append(finding(
            check, Severity.CRITICAL,
            f"policy {policy} on {table} is {which} (true) for {', '.join(r['roles'])}",
            object=r["name"], value=r["command"],
            detail=f"permissive {r['command']} policy: permissive policies are OR-ed, so this one opens the table "
                   f"to every {' / '.join(r['roles'])} session whatever the tenant policies say"
                   + ("" if r["rls_enabled"] else " (RLS is disabled on the table at the moment)") + ".",
            remediation=f"drop policy {policy} on {table};\n"
                        "-- If the table really is public (a price list), say so: suppress this key in params.",
            data=r,
        ))
    return out or [ok(check, "no permissive policy is unconditionally true for anon/authenticated")]


def _privileged(check, rows, t, ctx):
    out = []
    expected = []
    for r in rows:
        if r["expected"]:
            expected.append(r["role"])
            continue
        if r["superuser"]:
            what, severity = "is a superuser", Severity.CRITICAL
        elif r["member_of_superusers"]:
            what, severity = f"can SET ROLE to superuser {', '.join(r['member_of_superusers'])}", Severity.CRITICAL
        else:
            what, severity = "bypasses row level security", Severity.WARNING
        login = "can log in" if r["can_login"] else "cannot log in"
        role = quote_ident(r["role"])
        out.append(finding(
            check, severity, f"role {role} {what} ({login})", object=f"role:{role}",
            value="superuser" if r["superuser"] else "bypassrls",
            detail=f"Not one of the expected privileged roles ({', '.join(t['expected'])} and the bootstrap "
                   "superuser). A leftover or shared login with these rights defeats every other control.",
            remediation=_unprivilege(r, role),
            data=r,
        ))
    return out or [ok(check, "only the expected roles are privileged: " + ", ".join(expected))]


def _unprivilege(r, role: str) -> str:
    """Statements taking every privilege the check saw away from the role (or dropping it)."""
    attributes = [a for a, held in (("nosuperuser", r["superuser"]), ("nobypassrls", r["bypassrls"])) if held]
    out = [f"alter role {role} {' '.join(attributes)};"] if attributes else []
    if r["member_of_superusers"]:
        out.append(f"revoke {', '.join(map(quote_ident, r['member_of_superusers']))} from {role};")
    out.append(f"-- or, if nobody needs it, in each database: reassign owned by {role} to postgres; "
               f"drop owned by {role}; then drop role {role};")
    return "\n".join(out)


def _definer(check, rows, t, ctx):
    out = []
    for r in rows:
        exposed = r["api_execute"]
        out.append(finding(
            check, Severity.CRITICAL if exposed else Severity.WARNING,
            f"SECURITY DEFINER {r['kind']} {r['name']} has no fixed search_path", object=r["name"],
            value=", ".join(exposed) or None,
            detail=f"owned by {r['owner']}"
                   + (f"; executable by {', '.join(exposed)} through the API" if exposed else "")
                   + ". It runs with its owner's rights but resolves unqualified names on the caller's search_path.",
            remediation=f"alter {r['kind']} {r['name']} set search_path = '';  -- then schema-qualify every name "
                        "in its body (public.org_users, auth.uid())",
            data=r,
        ))
    return out or [ok(check, "every SECURITY DEFINER function pins its search_path")]


def _mutable_search_path(check, rows, t, ctx):
    out = []
    for r in rows:
        exposed = r["api_execute"]
        out.append(finding(
            check, Severity.WARNING, f"{r['kind']} {r['name']} has a mutable search_path", object=r["name"],
            value=", ".join(exposed) or None,
            detail=f"{r['language']}, owned by {r['owner']}"
                   + (f"; executable by {', '.join(exposed)} through the API" if exposed else "")
                   + ". It resolves unqualified names on its caller's search_path: the same call can reach "
                     "another schema's object, or one planted earlier on the path (splinter 0011).",
            remediation=f"alter {r['kind']} {r['name']} set search_path = '';  -- then schema-qualify every name "
                        "in its body\n"
                        f"-- undo: alter {r['kind']} {r['name']} reset search_path;",
            data=r,
        ))
    return out or [ok(check, f"every function in {', '.join(ctx.exposed_schemas)} pins its search_path")]


def _definer_api(check, rows, t, ctx):
    out = []
    for r in rows:
        callers = ", ".join(r["api_execute"])
        if r["returns_table"] and (r["returns_rls_table"] or r["returns_tenant_table"]):
            severity = Severity.CRITICAL
            why = (f"it returns {'rows' if r['returns_set'] else 'a row'} of {r['returns_table']}"
                   + (" (row level security enabled)" if r["returns_rls_table"] else "")
                   + f" as {r['owner']}: whatever the caller's policies, through /rpc")
        elif r["used_by_policies"]:
            severity = Severity.INFO
            why = (f"policies call it ({', '.join(r['used_by_policies'])}), so the API roles need EXECUTE; it is "
                   f"also callable directly through /rpc and returns {r['returns']}: check that is harmless, or "
                   "move it to a schema the API does not expose")
        else:
            severity = Severity.WARNING
            why = f"it runs as {r['owner']} and returns {r['returns']}; the API exposes it through /rpc"
        fixes = f"revoke execute on {r['kind']} {r['name']} from public, anon, authenticated;"
        out.append(finding(
            check, severity, f"{callers} can execute SECURITY DEFINER {r['kind']} {r['name']}", object=r["name"],
            value=callers,
            detail=f"{why} (splinter 0028/0029).",
            remediation=fixes + "\n-- Grant it back only to the roles that need it (service_role), or move it out of "
                                "the exposed schemas: create schema if not exists private; alter "
                                f"{r['kind']} {r['name']} set schema private;",
            data=r,
        ))
    return out or [ok(check, f"no SECURITY DEFINER function in {', '.join(ctx.exposed_schemas)} is executable by "
                             "anon or authenticated")]


def _anon(check, rows, t, ctx):
    out = []
    for r in rows:
        privileges = ", ".join(r["privileges"])
        if r["kind"] in ("view", "materialized view") and not r["security_invoker"]:
            severity, why = Severity.CRITICAL, "a view runs as its owner: the tables' RLS does not protect it"
        elif not r["rls_enabled"] and r["kind"] == "table":
            severity, why = Severity.CRITICAL, "row level security is disabled: every row is public"
        elif r["anon_policies"]:
            severity, why = Severity.CRITICAL, "policies let logged-out visitors in: " + "; ".join(r["anon_policies"])
        else:
            severity, why = Severity.INFO, "RLS is enabled and no policy applies to anon, so it sees nothing today"
        out.append(finding(
            check, severity, f"anon holds {privileges} on {r['name']}", object=r["name"], value=privileges,
            detail=f"{r['kind']}; {why}.",
            remediation=f"revoke all on {r['name']} from anon;"
                        + "".join(f"\ndrop policy {quote_ident(p)} on {r['name']};" for p in r["anon_policy_names"])
                        + "\n-- If logged-out access is intended, expose only the needed columns through a "
                          "security_invoker view and suppress this key in params.",
            data=r,
        ))
    return out or [ok(check, f"anon holds no privilege on tables or views in {', '.join(t['schemas'])}")]


def _missing_fk(check, rows, t, ctx):
    out = []
    for r in rows:
        table, column = qualified(r["schema"], r["table"]), quote_ident(r["column"])
        constraint = quote_ident(f"{r['table']}_{r['column']}_fkey")
        index = "" if r["indexed"] else (f"\n  create index concurrently {quote_ident(r['table'] + '_' + r['column'] + '_idx')} "
                                         f"on {table} ({column});")
        out.append(finding(
            check, Severity.WARNING,
            f"{r['name']} looks like a reference to {r['referenced_table']}({quote_ident(r['referenced_column'])}) but has no "
            "foreign key", object=r["name"], value=r["referenced_table"],
            detail=f"{r['evidence']}. Without the constraint nothing stops rows pointing at deleted parents "
                   "(see orphaned_rows).",
            remediation="-- Clean up the orphans first (orphaned_rows), then add it without a long lock:\n"
                        f"  alter table {table} add constraint {constraint} foreign key ({column})\n"
                        f"    references {r['referenced_table']} ({quote_ident(r['referenced_column'])}) not valid;\n"
                        f"  alter table {table} validate constraint {constraint};" + index,
            data=r,
        ))
    return out or [ok(check, f"every *_id column matching a key in {', '.join(t['schemas'])} has its foreign key")]


register(Check(
    id="rls_disabled",
    title="RLS disabled",
    category="security",
    description="Tables in the API schemas without row level security; critical when anon or authenticated "
                "holds a privilege on them.",
    why="Supabase's Data API exposes the public schema: without RLS a granted role reads and writes every "
        "tenant's rows.",
    remediation="alter table <table> enable row level security; plus a tenant policy.",
    evaluate=_rls_disabled,
    thresholds={"schemas": API_SCHEMAS},
))

register(Check(
    id="rls_no_policy",
    title="RLS without policy",
    category="security",
    description="Tables with row level security enabled and no policy; warning when the API roles are "
                "granted on them.",
    why="No policy means no API access at all: either a feature is silently broken or the intent (service "
        "role only) is undocumented.",
    remediation="create policy … ; or revoke the API roles and document 'service role only'.",
    evaluate=_rls_no_policy,
    thresholds={"schemas": API_SCHEMAS},
))

register(Check(
    id="policy_initplan",
    title="Policies re-evaluating auth functions per row",
    category="security",
    description="Policies calling auth.uid()/jwt()/role()/email() or current_setting() without the "
                "(select …) wrapper.",
    why="Unwrapped, the call runs for every row scanned (Supabase measured 100x slower queries); wrapped it "
        "is an InitPlan evaluated once per statement.",
    remediation="alter policy … using (… (select auth.uid()) …);",
    evaluate=_initplan,
    thresholds={"schemas": API_SCHEMAS},
))

register(Check(
    id="policy_always_true",
    title="Always-true policies",
    category="security",
    description="Permissive policies that are USING (true) or WITH CHECK (true) for anon, authenticated or "
                "PUBLIC.",
    why="Permissive policies are OR-ed: one 'Enable read access for all users' policy next to the tenant "
        "policy gives every logged-in user every organization's rows.",
    remediation="drop policy <policy> on <table>;",
    evaluate=_always_true,
    thresholds={"schemas": API_SCHEMAS},
))

register(Check(
    id="privileged_roles",
    title="Privileged roles",
    category="security",
    description="Superusers, BYPASSRLS roles and members of superuser roles beyond the expected ones "
                "(`expected`, plus the bootstrap superuser).",
    why="A forgotten superuser login bypasses RLS, auditing and every grant; on Supabase only the platform "
        "(supabase_admin) should be one.",
    remediation="alter role <role> nosuperuser nobypassrls; or drop it after reassigning its objects.",
    evaluate=_privileged,
    thresholds={"expected": EXPECTED_PRIVILEGED},
))

register(Check(
    id="security_definer_search_path",
    title="SECURITY DEFINER without search_path",
    category="security",
    description="SECURITY DEFINER functions and procedures without `set search_path` (platform schemas in "
                "exclude_schemas and extension objects are left out); critical when the API roles may "
                "execute them.",
    why="The function runs as its owner (often postgres, which bypasses RLS) but looks names up on the "
        "caller's search_path: a classic privilege escalation.",
    remediation="alter function <function> set search_path = ''; and schema-qualify its body.",
    evaluate=_definer,
    thresholds={"exclude_schemas": PLATFORM_SCHEMAS},
))

register(Check(
    id="function_search_path",
    title="Functions with a mutable search_path",
    category="security",
    description="Functions and procedures in the exposed schemas (not SECURITY DEFINER: see "
                "security_definer_search_path) without `set search_path`; extension objects are left out.",
    why="Unqualified names resolve on the caller's search_path: called from a definer function, a policy or "
        "another schema's session, the function reads or runs something else (splinter 0011).",
    remediation="alter function <function> set search_path = ''; and schema-qualify its body.",
    evaluate=_mutable_search_path,
))

register(Check(
    id="definer_api_execute",
    title="SECURITY DEFINER functions callable through the API",
    category="security",
    description="SECURITY DEFINER functions in the exposed schemas that anon or authenticated may execute "
                "(/rpc); critical when they return rows of a tenant table or of a table with RLS, info when "
                "policies call them (the API roles need EXECUTE then).",
    why="A definer function runs as its owner (postgres bypasses RLS): callable through /rpc, it returns "
        "what its owner can read to anyone holding the public key or a login (splinter 0028, 0029).",
    remediation="revoke execute on function <function> from public, anon, authenticated; or move it out of the "
                "exposed schemas.",
    evaluate=_definer_api,
    thresholds={"tenant_column": "org_id"},
))

register(Check(
    id="anon_grants",
    title="Grants to anon",
    category="security",
    description="Tables and views in the API schemas on which anon (logged-out visitors) holds a privilege; "
                "critical when something lets it read (RLS off, a policy for anon, a definer view).",
    why="anon is what the public API key gets: anything it can select is readable by anyone on the Internet.",
    remediation="revoke all on <table> from anon;",
    evaluate=_anon,
    thresholds={"schemas": API_SCHEMAS},
))

register(Check(
    id="missing_foreign_keys",
    title="Missing foreign keys",
    category="security",
    description="*_id columns that match another table's key (by the schema's own naming convention or by "
                "name) but carry no foreign key; tables matching exclude_tables are left out.",
    why="Without the constraint, deleting an organization by hand leaves its rows behind (the guide's "
        "orphan queries) and nothing prevents writes pointing nowhere.",
    remediation="alter table … add constraint … foreign key … not valid; then validate constraint …;",
    evaluate=_missing_fk,
    thresholds={"schemas": API_SCHEMAS, "exclude_tables": ["%\\_archives", "%\\_archive"]},
))
