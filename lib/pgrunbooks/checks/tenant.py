"""Tenant isolation, tested for real: the API roles, a member's JWT claims, every tenant table.

As the connected role (which must not be subject to RLS: postgres on Supabase), the check picks, for
every tenant table, a bounded sample of rows of the first organizations (through the tenant column's
index). Then, for each sampled member of two or more organizations, inside a read-only transaction
and one rolled-back savepoint per table: ``set local role authenticated`` and
``set_config('request.jwt.claims', '{"sub": …, "role": "authenticated"}', true)``, and it counts how
many of the sampled rows of *other* organizations the member can fetch by primary key. Then the
same as ``anon``, for whom every tenant row is foreign. Any visible foreign row is a leak.

Which policy leaks is proven, not guessed from its text: in the same savepoint, each permissive
SELECT policy's own expression (``pg_get_expr``) is evaluated on the foreign rows the member saw, so
``org_id is not null`` is named as surely as ``true``. The printed fix drops a select-only culprit
while another policy still serves the members and narrows any other to the member's organizations
(a ``for all`` policy keeps serving writes within the tenant).

Both ways: each member also fetches a sample of their *own* organizations' rows in the same
savepoint. Seeing none of them (a policy that hides them, like ``org_id = auth.uid()::text``) or
being refused (SQLSTATE 42501, no SELECT grant while SELECT policies are written for members) is a
finding naming the table, the policies and the member it was proven with. Nothing is written; the
role and claims end with each savepoint; the session's own role is verified back.
"""

from __future__ import annotations

import json

import psycopg
from psycopg import sql

from pgrunbooks.checks.format import plural
from pgrunbooks.checks.registry import Check, register
from pgrunbooks.checks.runner import SkipCheck, compose, execute, fetch, finding, ok, transaction
from pgrunbooks.checks.security import API_SCHEMAS, RECHECK
from pgrunbooks.errors import UsageError
from pgrunbooks.findings import Severity
from pgrunbooks.names import qualified, quote_ident


def _ident(qualified: str) -> sql.Identifier:
    """A ``schema.table`` threshold as an identifier (tables found in the catalog use their own
    schema and name instead)."""
    return sql.Identifier(*qualified.split(".", 1))


def table_identifier(row) -> sql.Identifier:
    """The table of a catalog row (``schema``, ``table``) as one quoted identifier."""
    return sql.Identifier(row["schema"], row["table"])


def _collect(check, ctx, t):
    """The live probe, once per run and thresholds (multiple_permissive_policies reads it too)."""
    key = "tenant_probe:" + json.dumps(dict(t), sort_keys=True, default=str)
    if key not in ctx.cache:
        try:
            ctx.cache[key] = _probe(check, ctx, t)
        except SkipCheck as skip:
            ctx.cache[key] = skip
    if isinstance(ctx.cache[key], SkipCheck):
        raise ctx.cache[key]
    return ctx.cache[key]


def _probe(check, ctx, t):
    if not can_set_role(ctx, check, "authenticated"):
        raise SkipCheck(
            f"role {ctx.current_user} cannot SET ROLE authenticated, so it cannot test what the API sees",
            f"grant authenticated, anon to {quote_ident(ctx.current_user)};  -- membership only: nothing is gained until "
            "a session switches role, and the probes run read-only",
        )
    tables = fetch(ctx, check, check.sql(ctx.server_version), t)
    tenant_table = next((r for r in tables if r["is_tenant_table"]), None)
    if tenant_table is None and any(t[k] != check.thresholds[k] for k in ("tenant_table", "tenant_column")):
        raise UsageError(
            f"tenant_isolation: tenant_table {t['tenant_table']} (tenant_column {t['tenant_column']}) matches no table "
            f"with a single-column primary key in {', '.join(t['schemas'])}",
            hint="give the table that holds one row per tenant, e.g. --threshold tenant_isolation.tenant_table=public.organizations",
        )
    if tenant_table is None:
        raise SkipCheck(f"tenant table {t['tenant_table']} not found in {', '.join(t['schemas'])} (or it has no "
                        "single-column primary key)", "set tenant_table / tenant_column to your schema's names")
    hidden = [r["name"] for r in tables if not r["sampleable"]]
    if hidden:
        raise SkipCheck(
            f"row level security (or a missing SELECT) hides rows of {', '.join(hidden[:5])} from "
            f"{ctx.current_user}, so it cannot pick other tenants' rows to probe with",
            "run it as a BYPASSRLS role with read access (postgres on Supabase; pg_read_all_data)",
        )
    ids = {
        "membership": _ident(t["membership_table"]),
        "member": sql.Identifier(t["member_column"]),
        "tenant": sql.Identifier(t["tenant_column"]),
    }
    members = fetch(ctx, check, check.sql(ctx.server_version, "members"), t, identifiers=ids)
    sample_sql = check.sql(ctx.server_version, "sample")
    tenant_ids = {"tenant_table": table_identifier(tenant_table), "tenant_key": sql.Identifier(tenant_table["pk_column"])}
    for table in tables:
        table.update(leaks=[], own=[], probed_members=0, anon_leaked=None, anon_probed=0, sample=[],
                     authenticated_leaking_policies=[], anon_leaking_policies=[])
        query = compose(ctx, check, sample_sql, {**tenant_ids, "table": table_identifier(table),
                                                 "pk": sql.Identifier(table["pk_column"]),
                                                 "key": sql.Identifier(table["key_column"])})
        with transaction(ctx, check) as cur:
            # A few rows per tenant through the tenant column's index, never a walk of the table.
            cur.execute("set local enable_seqscan = off")
            execute(ctx, check, cur, query, dict(t))
            table["sample"] = [(r["pk"], r["tenant"]) for r in cur.fetchall()]
    probe = check.sql(ctx.server_version, "probe")
    own_sql = check.sql(ctx.server_version, "own")
    admitted_sql = check.sql(ctx.server_version, "admitted")
    subjects = [("authenticated", m["user_id"], set(m["tenants"])) for m in members]
    if can_set_role(ctx, check, "anon"):
        subjects.append(("anon", None, set()))
    conn = ctx.session.conn
    for role, user_id, own in subjects:
        member = role == "authenticated"
        claims = {"role": role} if user_id is None else {"sub": user_id, "role": role, "aud": role}
        with transaction(ctx, check, search_path=None) as cur:
            for table in tables:
                # A table with SELECT policies for authenticated is meant to be read by members:
                # probe it even without the grant, so a missing grant shows as the 42501 members get.
                if not (table[f"{role}_select"] or (member and table["authenticated_policies"])):
                    continue
                foreign = [pk for pk, tenant in table["sample"] if tenant not in own]
                mine = own_rows(ctx, check, cur, own_sql, table, own, t) if member else []
                if not foreign and not mine:
                    continue
                query = compose(ctx, check, probe, {"table": table_identifier(table), "pk": sql.Identifier(table["pk_column"])})
                leaked = seen = denied = None
                admitting: list[str] | None = None
                try:
                    with conn.transaction(force_rollback=True):  # the role and claims end with the savepoint
                        cur.execute(sql.SQL("set local role {}").format(sql.Identifier(role)))
                        # The probe fetches a few hundred rows by primary key. On small tables
                        # (and on PostgreSQL 15's costing) the planner prefers reading the whole
                        # table; a diagnostic must not, whatever the table's size tomorrow.
                        cur.execute("set local enable_seqscan = off")
                        cur.execute(
                            "select set_config('request.jwt.claims', %s, true),"
                            " set_config('request.jwt.claim.sub', %s, true),"
                            " set_config('request.jwt.claim.role', %s, true)",
                            (json.dumps(claims), user_id or "", role),
                        )
                        if foreign:
                            execute(ctx, check, cur, query, {"ids": foreign})
                            leaked = cur.fetchone()["leaked"]
                            if leaked and table["rls_enabled"]:
                                admitting = admitting_policies(ctx, check, cur, admitted_sql, table, role, foreign)
                        if mine:
                            execute(ctx, check, cur, query, {"ids": mine})
                            seen = cur.fetchone()["leaked"]
                except psycopg.errors.InsufficientPrivilege as exc:  # SQLSTATE 42501: no SELECT grant
                    denied = exc.sqlstate
                if admitting:
                    known = table.setdefault(f"{role}_leaking_policies", [])
                    known.extend(name for name in admitting if name not in known)
                if role == "anon":
                    table["anon_leaked"], table["anon_probed"] = leaked, len(foreign)
                    continue
                tenants = sorted(str(x) for x in own)
                if leaked is not None:
                    table["probed_members"] += 1
                    if leaked:
                        table["leaks"].append({"user_id": user_id, "tenants": tenants, "leaked": leaked,
                                               "probed": len(foreign), "policies": admitting})
                if mine:
                    table["own"].append({"user_id": user_id, "tenants": tenants, "expected": len(mine),
                                         "seen": seen, "denied": denied})
            cur.execute("select current_user::text as role")
            back = cur.fetchone()["role"]
            if back != ctx.current_user:  # pragma: no cover - the savepoint rollback restores it
                raise RuntimeError(f"role not restored after the probes: {back}")
    for table in tables:
        table["members_sampled"] = len(members)
        table["sampled_rows"] = len(table.pop("sample"))
    return tables


def admitting_policies(ctx, check, cur, admitted_sql: str, table, role: str, ids: list) -> list[str] | None:
    """Which of the table's permissive SELECT policies for ``role`` admit the foreign rows ``ids`` the
    session (already the role, with the member's claims) just saw: each policy's own expression,
    evaluated on those rows as the member, exactly as the server evaluates it. None when an
    expression cannot be evaluated on its own (the finding then names every policy)."""
    names, exprs = table[f"{role}_policy_names"], table[f"{role}_policy_exprs"]
    if not names:
        return None
    # The server's own deparsed text (pg_get_expr); a literal % must not read as a placeholder.
    counts = sql.SQL(", ").join(
        sql.SQL("count(*) filter (where ({}))").format(sql.SQL(expr.replace("%", "%%"))) if expr is not None
        else sql.SQL("0")  # no USING: the policy admits no rows
        for expr in exprs
    )
    query = compose(ctx, check, admitted_sql, {"counts": counts, "table": table_identifier(table),
                                              "pk": sql.Identifier(table["pk_column"])})
    try:
        with ctx.session.conn.transaction():
            execute(ctx, check, cur, query, {"ids": ids})
            admitted = cur.fetchone()["admitted"]
    except psycopg.errors.Error:
        return None
    return [name for name, n in zip(names, admitted) if n]


def own_rows(ctx, check, cur, own_sql: str, table, tenants: set, t) -> list:
    """Primary keys of up to rows_per_tenant rows of each of a member's own tenants in ``table``,
    read as the connected role (the rows the member must see)."""
    query = compose(ctx, check, own_sql, {"table": table_identifier(table), "pk": sql.Identifier(table["pk_column"]),
                                          "key": sql.Identifier(table["key_column"])})
    with ctx.session.conn.transaction(force_rollback=True):
        cur.execute("set local enable_seqscan = off")  # through the tenant column's index, as the sample
        execute(ctx, check, cur, query, {"tenants": sorted(tenants), "rows_per_tenant": t["rows_per_tenant"]})
        return [r["pk"] for r in cur.fetchall()]


def can_set_role(ctx, check, role: str) -> bool:
    """Whether this session may ``SET ROLE role`` (tried in a rolled-back savepoint: membership
    alone is not enough on 16+, where the grant's SET option decides)."""
    key = f"set_role:{role}"
    if key not in ctx.cache:
        allowed = False
        with transaction(ctx, check) as cur:
            cur.execute("select exists (select 1 from pg_catalog.pg_roles where rolname = %s) as present", (role,))
            if cur.fetchone()["present"]:
                try:
                    with ctx.session.conn.transaction(force_rollback=True):
                        cur.execute(sql.SQL("set local role {}").format(sql.Identifier(role)))
                        allowed = True
                except psycopg.errors.InsufficientPrivilege:
                    allowed = False
        ctx.cache[key] = allowed
    return ctx.cache[key]


def _culprits(r, role: str) -> str:
    """What lets ``role`` see the rows: RLS off, else its permissive policies (``name: using``), naming
    first those proven to admit the foreign rows (or, unproven, those that are simply true)."""
    policies = r[f"{role}_policies"]
    if not r["rls_enabled"]:
        return "row level security is disabled on it"
    if not policies:
        return "no SELECT policy applies, yet rows are visible (owner or BYPASSRLS?)"
    proven = r.get(f"{role}_leaking_policies")
    named = proven or r[f"{role}_open_policies"]
    if not named:
        return f"{_policies(policies)} {'; '.join(policies)} (permissive policies are OR-ed)"
    one = len(named) == 1
    if proven:
        how = ("admits" if one else "admit") + " them (evaluated on the rows seen)"
    else:
        how = ("is" if one else "are") + " simply true"
    return (f"{_policies(named)} {', '.join(map(quote_ident, named))}, which {how} "
            "— permissive policies are OR-ed: " + "; ".join(policies))


def _policies(names: list[str]) -> str:
    return "policy" if len(names) == 1 else "policies"


def _evaluate(check, rows, t, ctx):
    out = []
    members = rows[0]["members_sampled"] if rows else 0
    for r in rows:
        problems = []
        if r["leaks"]:
            worst = max(r["leaks"], key=lambda leak: leak["leaked"])
            problems.append(
                f"{plural(len(r['leaks']), 'member')} of {r['probed_members']} tested see other organizations' rows "
                f"(user {worst['user_id']}, member of {len(worst['tenants'])} orgs, sees {worst['leaked']} of "
                f"{worst['probed']} sampled foreign rows) through {_culprits(r, 'authenticated')}")
        if r["anon_leaked"]:
            problems.append(
                f"logged-out visitors (anon) see {r['anon_leaked']} of {r['anon_probed']} sampled rows through "
                f"{_culprits(r, 'anon')}")
        if not problems:
            continue
        culprit = ""
        suspicious = leaking_policies(r)
        if suspicious:
            culprit = " (policy " + ", ".join(map(quote_ident, suspicious)) + ")"
        elif not r["rls_enabled"]:
            culprit = " (RLS disabled)"
        remediation = (
            ("" if r["rls_enabled"] else f"alter table {r['name']} enable row level security;\n")
            + leak_fix(r, t, suspicious)
            + "-- Every SELECT policy for authenticated must restrict to the member's organizations:\n"
            + f"--   using ({_tenant_expression(r, t)})\n"
            + RECHECK
        )
        out.append(finding(
            check, Severity.CRITICAL, f"{r['name']} leaks rows across tenants{culprit}", object=r["name"],
            value=max([leak["leaked"] for leak in r["leaks"]] + [r["anon_leaked"] or 0]),
            detail="; ".join(problems) + ".", remediation=remediation, data=r,
        ))
    for r in rows:
        out.extend(_own_rows_findings(check, r, t))
    if any(f.severity is not Severity.INFO for f in out):
        return out
    probed = [r for r in rows if r["probed_members"] or r["anon_leaked"] is not None]
    sampled = sum(r["sampled_rows"] for r in rows)
    not_granted = [r["name"] for r in rows if not r["authenticated_select"]]
    if not members:
        return [finding(check, Severity.INFO, "no member of two or more organizations to test with",
                        detail=f"{len(rows)} tenant tables found; anon tested on "
                               f"{sum(1 for r in rows if r['anon_leaked'] is not None)}.",
                        remediation="Seed a test member of two organizations, or lower the sample's requirements.")]
    own = sum(o["expected"] for r in rows for o in r["own"])
    return out + [ok(check, f"{plural(members, 'member')} of 2+ organizations and anon saw none of {sampled:,} sampled "
                            f"rows of other organizations in {plural(len(probed), 'tenant table')}, and the members "
                            f"saw their own organizations' rows ({own:,} sampled)"
                            + (f"; not granted to authenticated: {', '.join(not_granted)}" if not_granted else ""))]


def _own_rows_findings(check, r, t) -> list:
    """The other way round: a member who cannot see their own organization's rows, because SELECT
    is not granted (42501) or because the policies hide them (the guide's ``org_id = auth.uid()``)."""
    denied = [o for o in r["own"] if o["denied"]]
    read = [o for o in r["own"] if not o["denied"]]
    # Locked out only when no member tested sees any own row: a policy narrower than the tenant
    # (a user's own rows) can leave one member with none and is reported as partial.
    hidden = read if read and all(o["seen"] == 0 for o in read) else []
    partial = [] if hidden else [o for o in read if o["seen"] < o["expected"]]
    policies = "; ".join(r["authenticated_policies"]) or "none for authenticated"
    if denied:
        o = denied[0]
        return [finding(
            check, Severity.WARNING,
            f"{r['name']}: members are refused their own organization's rows (SQLSTATE {o['denied']}, no SELECT grant)",
            object=f"{r['name']}:own_rows", value=o["denied"],
            detail=f"{plural(len(denied), 'member')} tested, e.g. user {o['user_id']} (member of "
                   f"{', '.join(o['tenants'])}), got permission denied reading it as authenticated, although its "
                   f"SELECT policies are written for them ({policies}): every API read of it fails.",
            remediation=f"grant select on {r['name']} to authenticated;\n" + RECHECK,
            data={**r, "proven_with": o},
        )]
    if hidden:
        o = hidden[0]
        names = ", ".join(map(quote_ident, r["authenticated_policy_names"])) or "no permissive SELECT policy"
        return [finding(
            check, Severity.WARNING,
            f"{r['name']}: members see none of their own organization's rows (policy {names})",
            object=f"{r['name']}:own_rows", value=0, threshold=o["expected"],
            detail=f"{plural(len(hidden), 'member')} tested, e.g. user {o['user_id']} (member of "
                   f"{', '.join(o['tenants'])}), saw 0 of {o['expected']} sampled rows of their own organizations "
                   f"through {policies}. A policy comparing the tenant column with the user's id "
                   "(org_id = auth.uid()::text) hides every row: isolation by locking everyone out.",
            remediation=tenant_policy_fix(r, t),
            data={**r, "proven_with": o},
        )]
    if partial:
        o = partial[0]
        return [finding(
            check, Severity.INFO, f"{r['name']}: members see only part of their own organization's rows",
            object=f"{r['name']}:own_rows", value=o["seen"], threshold=o["expected"],
            detail=f"{plural(len(partial), 'member')} of {len(read)} tested, e.g. user {o['user_id']}, saw {o['seen']} "
                   f"of {o['expected']} sampled rows of their own organizations "
                   f"through {policies}: right if the policy is meant to be narrower than the tenant (own rows, a "
                   "role), a bug otherwise.",
            data={**r, "proven_with": o},
        )]
    return []


def leaking_policies(r) -> list[str]:
    """The policies the probes proved admit other tenants' rows (each one's expression evaluated on the
    rows seen), for the roles that saw them; else those that are simply true."""
    names: list[str] = []
    for role, leaked in (("authenticated", r["leaks"]), ("anon", r["anon_leaked"])):
        if leaked:
            proven = r.get(f"{role}_leaking_policies") or r[f"{role}_open_policies"]
            names.extend(name for name in proven if name not in names)
    return names


def leak_fix(r, t, culprits: list[str]) -> str:
    """SQL closing the leak through ``culprits``: a select-only policy is dropped when another SELECT
    policy still serves the members (or it never served them: anon's); any other is narrowed to the
    member's organizations, so members keep their rows and a ``for all`` policy keeps serving writes."""
    commands = dict(zip(r["anon_policy_names"], r["anon_policy_commands"]))
    commands.update(zip(r["authenticated_policy_names"], r["authenticated_policy_commands"]))
    keepers = [name for name in r["authenticated_policy_names"] if name not in culprits]
    drop = [name for name in culprits
            if commands.get(name) == "select" and (keepers or name not in r["authenticated_policy_names"])]
    narrow = [name for name in culprits if name not in drop]
    text = "".join(f"drop policy {quote_ident(name)} on {r['name']};\n" for name in drop)
    if narrow:
        text += _alter_policies(r, t, narrow, [commands.get(name, "all") for name in narrow])
    return text


def _tenant_expression(r, t) -> str:
    membership = qualified(*t["membership_table"].split(".", 1))
    return (f"{quote_ident(r['key_column'])} in (select m.{quote_ident(t['tenant_column'])} from {membership} m "
            f"where m.{quote_ident(t['member_column'])} = (select auth.uid()))")


def _alter_policies(r, t, names: list[str], commands: list[str]) -> str:
    expr = _tenant_expression(r, t)
    return "".join(
        f"alter policy {quote_ident(name)} on {r['name']} using ({expr})"
        + (f" with check ({expr})" if command == "all" else "") + ";\n"
        for name, command in zip(names, commands)
    )


def tenant_policy_fix(r, t) -> str:
    """The member's-organizations expression for ``r``'s SELECT policies (or a new policy)."""
    expr = _tenant_expression(r, t)
    if not r["authenticated_policy_names"]:
        return (f"create policy {quote_ident(r['table'] + '_tenant_select')} on {r['name']} for select to authenticated "
                f"using ({expr});\n" + RECHECK)
    return _alter_policies(r, t, r["authenticated_policy_names"], r["authenticated_policy_commands"]) + RECHECK


register(Check(
    id="tenant_isolation",
    title="Tenant isolation",
    category="tenant",
    description="For sampled members of two or more organizations (and for anon), every tenant table, read "
                "through the API role with their JWT claims, shows none of a sample of other organizations' rows "
                "(rows_per_tenant rows of each of the first sample_tenants organizations, fetched by primary key); "
                "and each member sees their own organizations' rows (critical: a leak; warning: members locked out "
                "by a policy, or refused with SQLSTATE 42501 for a missing grant).",
    why="The policies can look right and still leak: permissive policies are OR-ed, RLS can be off, a view "
        "can bypass it. Only querying as the API does proves isolation.",
    remediation="drop the leaking policy / enable RLS; every SELECT policy must restrict to the member's orgs "
                "(not hide them); grant select to authenticated where its policies expect members.",
    evaluate=_evaluate,
    collect=_collect,
    thresholds={
        "schemas": API_SCHEMAS,
        "tenant_table": "public.organizations",
        "tenant_column": "org_id",
        "membership_table": "public.org_users",
        "member_column": "user_id",
        "sample": 3,
        "scan_rows": 5000,
        "sample_tenants": 25,
        "rows_per_tenant": 40,
    },
    statement_timeout="20s",
    reads="a bounded sample per tenant table (sample_tenants x rows_per_tenant rows through the tenant column's "
          "index), then those rows by primary key as the API roles",
))
