"""Several permissive policies for one role and action on a table (splinter 0006).

Permissive policies are OR-ed and each is evaluated for every row a query reads. The finding is a
performance warning, and critical when ``tenant_isolation``'s live probe (run once, shared) proves
the union leaks other organizations' rows.

The printed remediation is always SQL that removes the pair for that role and action: one policy
OR-ing the pair's expressions, then each policy of the pair dropped. A policy that also serves
other actions (``for all``) or other roles is recreated for exactly what it served besides this
role and action, so nothing else changes: a ``for all`` tenant policy becomes its insert, update
and delete parts. A policy granted ``to public`` keeps ``to public`` for the other actions; for
this action it is narrowed to the other API role (roles that bypass RLS are not affected). A policy
without the expression an action needs admits nothing for it and adds nothing to the merge.

Critical (a proven leak): the SQL is tenant_isolation's fix for the policies the probe proved to
admit other tenants' rows (each one's expression evaluated on the rows seen): a select-only one is
dropped while another policy serves the members, any other is narrowed to the member's organizations.
The pair may then remain as a performance warning, with its merge.
"""

from __future__ import annotations

from typing import Any

from pgrunbooks.checks.registry import REGISTRY, Check, register
from pgrunbooks.checks.runner import SkipCheck, fetch, finding, ok
from pgrunbooks.checks.security import RECHECK
from pgrunbooks.checks.tenant import leak_fix
from pgrunbooks.findings import Severity
from pgrunbooks.names import quote_ident

#: pg_policy.polcmd → the actions a policy serves
COMMANDS = {"*": ("select", "insert", "update", "delete"), "r": ("select",), "a": ("insert",),
            "w": ("update",), "d": ("delete",)}
API_ROLES = ("anon", "authenticated")
NAME_BYTES = 63  # NAMEDATALEN - 1: longer names are truncated by the server


def _collect(check, ctx, t):
    rows = fetch(ctx, check, check.sql(ctx.server_version), t)
    isolation = REGISTRY["tenant_isolation"]
    try:
        probed = {r["name"]: r for r in isolation.collect(isolation, ctx, isolation.thresholds)}
        unprobed = None
    except SkipCheck as skip:
        probed, unprobed = {}, skip.reason
    for r in rows:
        table = probed.get(r["name"])
        r["probe"] = unprobed or ("not a tenant table" if table is None else "probed")
        r["leaked"] = None
        r["leaking_policies"] = []
        r["leak_fix"] = ""
        r["rls_enabled"] = True if table is None else table["rls_enabled"]
        if table is not None and r["action"] == "select" and r["role"] in API_ROLES:
            leaks = [leak["leaked"] for leak in table["leaks"]] if r["role"] == "authenticated" else [table["anon_leaked"] or 0]
            r["leaked"] = max(leaks, default=0)
            # proven by the probe (each policy's expression evaluated on the rows seen), else the simply true ones
            proven = table[f"{r['role']}_leaking_policies"] or table[f"{r['role']}_open_policies"]
            r["leaking_policies"] = [p for p in proven if p in r["policies"]]
            # the same statements tenant_isolation prints for the table: one fix, whichever finding is read
            r["leak_fix"] = leak_fix(table, isolation.thresholds, r["leaking_policies"])
    return rows


def _evaluate(check, rows, t, ctx):
    out = []
    for r in rows:
        policies = ", ".join(map(quote_ident, r["policies"]))
        where = f"{r['name']} for {r['role']} {r['action']}"
        if r["leaked"]:
            culprits = r["leaking_policies"]
            out.append(finding(
                check, Severity.CRITICAL, f"{where}: permissive policies {policies} are OR-ed into a leak",
                object=f"{r['name']}:{r['role']}:{r['action']}", value=len(r["policies"]),
                detail=f"tenant_isolation's live probe, as {r['role']}, saw {r['leaked']} sampled rows of other "
                       "organizations: one of these policies is wider than the tenant, and permissive policies "
                       "are OR-ed" + (f" ({', '.join(map(quote_ident, culprits))} admits them)" if culprits else "")
                       + ".",
                remediation=leak_sql(r) + RECHECK,
                data=r,
            ))
            continue
        out.append(finding(
            check, Severity.WARNING, f"{where}: {len(r['policies'])} permissive policies ({policies})",
            object=f"{r['name']}:{r['role']}:{r['action']}", value=len(r["policies"]),
            detail="Every permissive policy is evaluated for every row the query reads and the results OR-ed "
                   "(splinter 0006): merged into one, the check runs once. "
                   + ("The live tenant probe saw no leak through them." if r["probe"] == "probed" else
                      f"Not proven leak-free by a live probe ({r['probe']})."),
            remediation=merge_sql(r),
            data=r,
        ))
    return out or [ok(check, f"no two permissive policies apply to the same role and action on a table in "
                             f"{', '.join(ctx.exposed_schemas)}")]


def leak_sql(r: dict[str, Any]) -> str:
    """SQL closing the leak: RLS enabled when it is off, else tenant_isolation's fix for the policies
    proven to admit other tenants' rows (a select-only one dropped while another serves the members,
    any other narrowed to the member's organizations, for every command it serves)."""
    if not r["rls_enabled"]:
        return f"alter table {r['name']} enable row level security;\n"
    if not r["leak_fix"]:
        return ("-- The probe could not tell which policy admits the rows (an expression that cannot be evaluated "
                "on its own): drop or narrow the one that does not restrict to the member's organizations.\n")
    return r["leak_fix"]


def merge_sql(r: dict[str, Any]) -> str:
    """SQL replacing the pair by one policy for this role and action that OR-s their expressions;
    a policy of the pair that serves more than that is recreated for the rest (see the module doc)."""
    action, role = r["action"], r["role"]
    members = r["members"]
    # With check applies to insert and update (a policy without one checks new rows with its using). A
    # policy without the expression an action needs admits nothing for it (the server adds no clause for
    # it), so the merge ORs the ones that have it, and is false when none has.
    usings = [m["using"] for m in members if m["using"] is not None]
    checks = [m["check"] or m["using"] for m in members if (m["check"] or m["using"]) is not None]
    using = "" if action == "insert" else " using (" + _any(usings) + ")"
    check = (" with check (" + _any(checks) + ")") if action in ("insert", "update") else ""
    merged = quote_ident(_name(f"{r['table']}_{action}_{role}"))
    lines = [f"create policy {merged} on {r['name']} as permissive for {action} to {quote_ident(role)}{using}{check};"]
    for m in members:
        lines += _remainder(r["name"], m, role, action)
        lines.append(f"drop policy {quote_ident(m['policy'])} on {r['name']};")
    note = ("-- The merged policy admits exactly the rows the pair did for " + f"{role} {action}, evaluated once per row"
            + ("; the split parts keep what the wider policies served otherwise." if len(lines) > 1 + len(members) else "."))
    return "\n".join(lines) + "\n" + note


def _any(expressions: list[str]) -> str:
    return " or ".join(f"({e})" for e in expressions) or "false"


def _remainder(table: str, member: dict[str, Any], role: str, action: str) -> list[str]:
    """``create policy`` statements for what ``member`` serves besides (role, action)."""
    out = []
    for other in COMMANDS[member["command"]]:
        roles = list(member["roles"])
        if other == action:
            if roles == ["public"]:
                roles = [r for r in API_ROLES if r != role]
            else:
                roles = [r for r in roles if r != role]
        if not roles:
            continue
        using = member["using"]
        check = member["check"] or using if other in ("insert", "update") else None
        if other == "insert":
            using = None
        if other != "insert" and using is None:
            continue  # the policy granted no rows for this action
        if other == "insert" and check is None:
            continue
        clauses = (f" using ({using})" if using is not None else "") + (f" with check ({check})" if check is not None else "")
        to = ", ".join("public" if r == "public" else quote_ident(r) for r in roles)
        name = quote_ident(_name(f"{member['policy']}_{other}" if other != action else f"{member['policy']}_{other}_others"))
        out.append(f"create policy {name} on {table} as permissive for {other} to {to}{clauses};")
    return out


def _name(name: str) -> str:
    """A policy name the server keeps as written (at most 63 bytes)."""
    encoded = name.encode()
    return name if len(encoded) <= NAME_BYTES else encoded[:NAME_BYTES].decode(errors="ignore")


register(Check(
    id="multiple_permissive_policies",
    title="Several permissive policies for one role and action",
    category="tenant",
    description="Tables in the exposed schemas where two or more permissive policies apply to the same role and "
                "action: a performance warning, critical when tenant_isolation's live probe (its default "
                "thresholds, run once) proves their union leaks other organizations' rows.",
    why="Permissive policies are OR-ed and each is evaluated per row (splinter 0006): slower, and one wide "
        "policy (using true) opens the table whatever the tenant policy says.",
    remediation="drop the policy that leaks; merge the others into one per role and action (a for all or "
                "multi-role policy is split into the parts that serve the other actions and roles).",
    evaluate=_evaluate,
    collect=_collect,
    statement_timeout="20s",
    reads="catalogs, then tenant_isolation's bounded probe (shared with that check when both run)",
))
