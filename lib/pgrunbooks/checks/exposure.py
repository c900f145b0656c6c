"""Exposure: what the Data API (PostgREST) serves from the exposed schemas, the counterparts of
Supabase's Database Advisors (splinter 0002, 0004, 0007, 0010, 0014, 0015, 0016, 0017).

Every query here reads the run's exposed schemas (``%(exposed_schemas)s``, see
:mod:`pgrunbooks.checks.runner`): ``public`` unless ``pgrst.db_schemas`` or the caller says otherwise.
"""

from __future__ import annotations

import re

from pgrunbooks.checks.registry import Check, register
from pgrunbooks.checks.runner import finding, ok
from pgrunbooks.findings import Severity
from pgrunbooks.names import qualified, quote_ident

#: the place Supabase installs extensions, where 0014's remediation moves them
EXTENSIONS_SCHEMA = "extensions"
#: the last line of a remediation that changes what the API roles see
RECHECK = ("-- Then check again: pgrunbooks check --category exposure,security,tenant "
           "(tenant_isolation reads the tables as the API roles do).")


def _schemas(ctx) -> str:
    return ", ".join(ctx.exposed_schemas)


def _revoke_api(name: str, roles) -> str:
    return f"revoke select on {name} from {', '.join(map(quote_ident, roles))};"


def _tables_without_pk(check, rows, t, ctx):
    out = []
    for r in rows:
        table = qualified(r["schema"], r["table"])
        if r["candidate_index"]:
            fix = (f"-- {r['candidate_index']} is unique over NOT NULL columns: it becomes the key without a rebuild.\n"
                   f"alter table {table} add constraint {quote_ident(r['table'] + '_pkey')} "
                   f"primary key using index {r['candidate_index']};")
        else:
            column = "pk_id" if r["has_id_column"] else "id"
            fix = ("-- A surrogate key (rewrites the table under an ACCESS EXCLUSIVE lock: run it in a quiet "
                   "window).\n"
                   f"alter table {table} add column {column} bigint generated always as identity primary key;")
        api = r["api_select"]
        out.append(finding(
            check, Severity.WARNING, f"{r['name']} has no primary key", object=r["name"],
            value=r["estimated_rows"],
            detail=f"about {r['estimated_rows']} rows"
                   + (f"; selectable through the API by {', '.join(api)}" if api else "")
                   + ". Without a key the Data API cannot address one row (updates and deletes by key), "
                     "logical replication cannot replicate its updates and deletes, and duplicates go unnoticed.",
            remediation=fix,
            data=r,
        ))
    return out or [ok(check, f"every table in {_schemas(ctx)} has a primary key")]


def _auth_users_exposed(check, rows, t, ctx):
    out = []
    for r in rows:
        api = r["api_select"]
        runs_as_owner = not r["security_invoker"]
        leaks = [role for role in api if runs_as_owner or role in r["api_select_users"]]
        how = (f"a {r['kind']} runs with its owner's ({r['owner']}) rights" if runs_as_owner
               else "a security_invoker view, and the role can read auth.users itself")
        severity = Severity.CRITICAL if leaks else Severity.INFO
        out.append(finding(
            check, severity, f"{r['kind']} {r['name']} exposes auth.users"
            + (f" to {', '.join(leaks)}" if leaks else ""), object=r["name"], value=", ".join(leaks) or None,
            detail=(f"{how}: through the API, {' and '.join(leaks)} read the users' e-mails, phones and metadata."
                    if leaks else "No API role can read it through the view today; keep it out of the exposed "
                                  "schemas all the same."),
            remediation=_revoke_api(r["name"], api or ["anon", "authenticated"]) + "\n"
                        "-- Keep it for the service role, or move it out of the exposed schemas: "
                        f"alter {r['kind']} {r['name']} set schema private;",
            data=r,
        ))
    return out or [ok(check, f"no view or materialized view in {_schemas(ctx)} reads auth.users")]


#: what the user may edit -> what only the service role (or an auth hook) writes
_METADATA = ((re.compile(r"\buser_metadata\b"), "app_metadata"),
             (re.compile(r"\braw_user_meta_data\b"), "raw_app_meta_data"))


def _app_metadata(expr: str) -> str:
    for pattern, replacement in _METADATA:
        expr = pattern.sub(replacement, expr)
    return expr


def _user_metadata(check, rows, t, ctx):
    out = []
    for r in rows:
        policy, table = quote_ident(r["policy"]), qualified(r["schema"], r["table"])
        clauses = "".join(f"\n  {clause} ({_app_metadata(expr)})"
                          for clause, expr in (("using", r["using_expr"]), ("with check", r["check_expr"])) if expr)
        out.append(finding(
            check, Severity.CRITICAL, f"policy {policy} on {table} trusts user_metadata",
            object=r["name"], value=r["command"],
            detail=f"{'permissive' if r['permissive'] else 'restrictive'} {r['command']} policy to "
                   f"{', '.join(r['roles'])}: using ({r['using_expr'] or '-'})"
                   + (f" with check ({r['check_expr']})" if r["check_expr"] else "")
                   + ". Signed-in users edit their own user_metadata (supabase.auth.updateUser), so they "
                     "choose what this policy sees.",
            remediation="-- The same rule over app_metadata, which only the service role or an auth hook writes "
                        "(fill it for existing users first).\n"
                        f"alter policy {policy} on {table}{clauses};\n" + RECHECK,
            data=r,
        ))
    return out or [ok(check, f"no policy in {_schemas(ctx)} reads user_metadata")]


def _security_definer_views(check, rows, t, ctx):
    out = []
    for r in rows:
        bypassed = r["bypassed_tables"]
        if r["owner_superuser"] or r["owner_bypassrls"]:
            why = f"its owner {r['owner']} {'is a superuser' if r['owner_superuser'] else 'has BYPASSRLS'}"
        else:
            why = f"its owner {r['owner']} owns the tables"
        if bypassed:
            severity = Severity.CRITICAL
            detail = (f"It reads {', '.join(bypassed)} with row level security, and {why}: their policies do not "
                      f"apply, so {' and '.join(r['api_select'])} see every tenant's rows through it.")
        else:
            severity = Severity.WARNING
            detail = ("It runs with its owner's rights (not security_invoker): callers read what "
                      f"{r['owner']} may read, not what they may.")
        out.append(finding(
            check, severity, f"view {r['name']} bypasses row level security for {', '.join(r['api_select'])}",
            object=r["name"], value=", ".join(r["api_select"]),
            detail=detail,
            remediation="-- Run it as the caller: the tables' RLS then applies, and callers need SELECT on them.\n"
                        f"alter view {r['name']} set (security_invoker = on);\n"
                        f"-- undo: alter view {r['name']} reset (security_invoker);\n" + RECHECK,
            data=r,
        ))
    return out or [ok(check, f"every view in {_schemas(ctx)} the API roles can read runs as the caller")]


def _policies_without_rls(check, rows, t, ctx):
    out = []
    for r in rows:
        exposed = r["api_access"]
        policies = ", ".join(r["policies"])
        out.append(finding(
            check, Severity.CRITICAL if exposed else Severity.WARNING,
            f"{r['name']} has policies but row level security is disabled", object=r["name"],
            value=policies,
            detail=f"The policies ({policies}) are ignored while RLS is off"
                   + (f"; {', '.join(exposed)} reach every row." if exposed else "; no API role is granted on it today."),
            remediation=f"alter table {r['name']} enable row level security;\n"
                        "-- Its policies apply from now on: check they let each role see what it should.\n" + RECHECK,
            data=r,
        ))
    return out or [ok(check, f"every table in {_schemas(ctx)} with a policy has row level security enabled")]


def _extensions_in_public(check, rows, t, ctx):
    out = []
    for r in rows:
        name, schema = quote_ident(r["extension"]), quote_ident(EXTENSIONS_SCHEMA)
        if r["relocatable"]:
            fix = f"alter extension {name} set schema {schema};"
        else:
            fix = ("-- It is not relocatable: drop it (refused while objects depend on it) and create it again.\n"
                   f"drop extension {name};\ncreate extension {name} with schema {schema};")
        out.append(finding(
            check, Severity.WARNING, f"extension {r['extension']} is installed in {r['schema']}",
            object=f"extension:{name}", value=r["schema"],
            detail=f"version {r['version']}, {r['members']} objects in {r['schema']}: the Data API serves them "
                   "(its functions become RPC endpoints) and they crowd the application's schema.",
            remediation=fix + f"\n-- Code calling its functions unqualified needs {schema} on its search_path.",
            data=r,
        ))
    return out or [ok(check, f"no extension is installed in {', '.join(dict.fromkeys(['public', *ctx.exposed_schemas]))}")]


def _materialized_views_exposed(check, rows, t, ctx):
    out = []
    for r in rows:
        api = r["api_select"]
        tenant = r["rls_tables"]
        out.append(finding(
            check, Severity.CRITICAL if tenant else Severity.WARNING,
            f"materialized view {r['name']} is readable by {', '.join(api)}", object=r["name"],
            value=", ".join(api),
            detail="A materialized view has no row level security and is filled with its owner's rights"
                   + (f": it holds every tenant's rows of {', '.join(tenant)}." if tenant else "."),
            remediation=_revoke_api(r["name"], api) + "\n"
                        "-- Serve it through a function or view that filters by tenant, or move it out of "
                        f"the exposed schemas: alter materialized view {r['name']} set schema private;",
            data=r,
        ))
    return out or [ok(check, f"no materialized view in {_schemas(ctx)} is readable by the API roles")]


def _foreign_tables_exposed(check, rows, t, ctx):
    out = []
    for r in rows:
        api = r["api_select"]
        out.append(finding(
            check, Severity.WARNING, f"foreign table {r['name']} is readable by {', '.join(api)}",
            object=r["name"], value=", ".join(api),
            detail=f"server {r['server']} ({r['wrapper']}). A foreign table has no row level security: "
                   "the API reads the remote rows with the user mapping's credentials.",
            remediation=_revoke_api(r["name"], api) + "\n"
                        "-- Or move it out of the exposed schemas: "
                        f"alter foreign table {r['name']} set schema private;",
            data=r,
        ))
    return out or [ok(check, f"no foreign table in {_schemas(ctx)} is readable by the API roles")]


register(Check(
    id="tables_without_primary_key",
    title="Tables without a primary key",
    category="exposure",
    description="Tables in the exposed schemas without a primary key (splinter 0004); partitions and "
                "extension tables are left out.",
    why="The Data API addresses rows by key, logical replication cannot replicate updates and deletes "
        "without one, and nothing stops duplicate rows.",
    remediation="alter table <table> add primary key …; (or add column id bigint generated always as identity "
                "primary key)",
    evaluate=_tables_without_pk,
))

register(Check(
    id="auth_users_exposed",
    title="auth.users exposed",
    category="exposure",
    description="Views and materialized views in the exposed schemas that read auth.users (splinter 0002); "
                "critical when anon or authenticated can select them.",
    why="auth.users holds every user's e-mail, phone and metadata; a view in an exposed schema running as "
        "its owner serves them to anyone with the API key.",
    remediation="revoke select on <view> from anon, authenticated; or move it out of the exposed schemas.",
    evaluate=_auth_users_exposed,
))

register(Check(
    id="policy_user_metadata",
    title="Policies trusting user_metadata",
    category="exposure",
    description="Policies whose expressions read user_metadata from the JWT or raw_user_meta_data "
                "(splinter 0015).",
    why="Users edit their own user_metadata: a policy deciding on it lets them grant themselves access.",
    remediation="alter policy … using (… app_metadata …);",
    evaluate=_user_metadata,
))

register(Check(
    id="security_definer_views",
    title="Views bypassing RLS",
    category="exposure",
    description="Views in the exposed schemas that anon or authenticated can select and that run as their "
                "owner (not security_invoker); critical when the owner skips the RLS of tables they read "
                "(splinter 0010).",
    why="A view runs with its owner's rights by default; owned by postgres (which owns the tables or "
        "bypasses RLS) it serves every tenant's rows whatever the policies say.",
    remediation="alter view <view> set (security_invoker = on);",
    evaluate=_security_definer_views,
))

register(Check(
    id="policies_without_rls",
    title="Policies on tables without RLS",
    category="exposure",
    description="Tables in the exposed schemas that have policies while row level security is disabled "
                "(splinter 0007); critical when the API roles hold privileges on them.",
    why="Someone wrote the policies and RLS was never enabled (or was switched off to debug): the table "
        "looks protected and is not.",
    remediation="alter table <table> enable row level security;",
    evaluate=_policies_without_rls,
))

register(Check(
    id="extensions_in_public",
    title="Extensions in public",
    category="exposure",
    description="Extensions installed in public or another exposed schema (splinter 0014).",
    why="Their functions and tables join the Data API; Supabase installs extensions in the extensions "
        "schema.",
    remediation="alter extension <extension> set schema extensions;",
    evaluate=_extensions_in_public,
))

register(Check(
    id="materialized_views_exposed",
    title="Materialized views in the API",
    category="exposure",
    description="Materialized views in the exposed schemas that anon or authenticated can select "
                "(splinter 0016); critical when computed from tables with row level security.",
    why="A materialized view has no row level security: what its owner computed, every API user reads.",
    remediation="revoke select on <materialized view> from anon, authenticated;",
    evaluate=_materialized_views_exposed,
))

register(Check(
    id="foreign_tables_exposed",
    title="Foreign tables in the API",
    category="exposure",
    description="Foreign tables in the exposed schemas that anon or authenticated can select (splinter 0017).",
    why="A foreign table has no row level security: the API serves the remote rows to every caller.",
    remediation="revoke select on <foreign table> from anon, authenticated;",
    evaluate=_foreign_tables_exposed,
))
