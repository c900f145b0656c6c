"""Tenant data exposure: what one user really sees, table by table, and which policy decides it.

"A user sees another organization's data", or "a user gets permission denied / sees nothing".
:func:`probe` answers both for one user (a uuid or an e-mail of ``auth.users``), inside ONE
rolled-back transaction, the way the Data API reads: ``set local role authenticated`` and
``request.jwt.claims`` = ``{"sub": <user>, "role": "authenticated"}``. Per tenant table it tells

* ``denied`` — SQLSTATE 42501: the table's SELECT is not granted to ``authenticated`` (a grant
  problem: row level security never ran);
* ``leak`` — rows of organizations the user is not a member of are visible: the permissive
  policies that admit them are named (each policy's ``using`` is evaluated alone, as the user);
* ``locked_out`` — the user's own organizations have rows (read as the connected role) and the
  user sees none of them: RLS filtered them all away; the policies that admit none are named;
* ``partial`` — some of their own rows are hidden (right for a narrower policy, a bug otherwise);
* ``ok`` — own rows visible, nothing foreign.

The tenant tables, their SELECT policies, the own-rows sample and the probe by primary key are
those of the ``tenant_isolation`` check (:mod:`pgrunbooks.checks.tenant`), imported, not copied.
Every scan is bounded (``max_rows``) and every statement by a statement timeout. The proposed
fix is SQL for a human to review (:attr:`TableExposure.fix`); :mod:`pgrunbooks.actions.policy_fix`
applies it in one transaction and re-probes before committing.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from typing import Any, Iterator

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from pgrunbooks.checks.registry import REGISTRY
from pgrunbooks.checks.runner import Context, fetch
from pgrunbooks.checks.tenant import can_set_role, own_rows, table_identifier, tenant_policy_fix
from pgrunbooks.errors import PrivilegeError, UsageError
from pgrunbooks.findings import Finding, Severity
from pgrunbooks.names import quote_ident

PLAYBOOK = "tenant_data_exposure"
#: at most this many rows of a table are read as the user (a leak shows long before)
MAX_ROWS = 20_000

_USER = """
select u.id::text as id, u.email::text as email
from auth.users u
where u.id::text = pg_catalog.lower(%(user)s) or pg_catalog.lower(u.email) = pg_catalog.lower(%(user)s)
order by u.id
limit 2
"""

_MEMBERSHIPS = """
select m.{tenant} as tenant, count(*)::int as memberships
from {membership} m
where m.{member}::text = %(user_id)s
group by 1
order by 1
"""

# Every policy of the table, deparsed with search_path = pg_catalog (so names print qualified):
# what the undo re-creates and what the per-policy evaluation runs.
_POLICIES = """
select p.polname::text as name,
       p.polpermissive as permissive,
       case p.polcmd when 'r' then 'select' when 'a' then 'insert' when 'w' then 'update'
                     when 'd' then 'delete' else 'all' end as command,
       array(select case when r.oid = 0 then 'public' else pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(r.oid)) end
             from pg_catalog.unnest(p.polroles) with ordinality r(oid, n) order by r.n) as roles,
       pg_catalog.pg_get_expr(p.polqual, p.polrelid) as using_expr,
       pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid) as check_expr,
       coalesce(0 = any (p.polroles)
                or (select a.oid from pg_catalog.pg_roles a where a.rolname = 'authenticated') = any (p.polroles), false)
         as for_authenticated
from pg_catalog.pg_policy p
where p.polrelid = %(table)s::regclass
order by p.polname
"""

# As the user: which tenants' rows the first max_rows visible rows belong to.
_VISIBLE = """
select s.tenant::text as tenant, count(*)::int as rows
from (select t.{key} as tenant from {table} t limit %(max_rows)s) s
group by 1
order by 1
"""

# As the user, with one policy's using expression as the filter: how many of the visible rows
# it admits, foreign and own (the policy's own text, from pg_get_expr).
_ADMITTED = """
select count(*) filter (where not (s.tenant::text = any (%(own)s::text[])))::int as foreign_rows,
       count(*) filter (where s.tenant::text = any (%(own)s::text[]))::int as own_rows
from (select t.{key} as tenant from {table} t where ({expr}) limit %(max_rows)s) s
"""


@dataclass
class TableExposure:
    """One table as the user sees it."""

    table: str
    verdict: str  # denied | leak | locked_out | partial | ok | not_for_members
    visible: dict[str, int] = field(default_factory=dict)  # tenant -> rows the user sees
    foreign: dict[str, int] = field(default_factory=dict)  # the visible tenants the user is not a member of
    own_expected: int = 0  # sampled own rows (as the connected role)
    own_seen: int | None = None  # of those, visible to the user
    sqlstate: str | None = None
    granted: bool = True
    rls_enabled: bool = True
    policies: list[dict[str, Any]] = field(default_factory=list)  # every policy, with admitted rows
    responsible: list[str] = field(default_factory=list)  # the policies the verdict is about
    fix: list[str] = field(default_factory=list)  # statements, for review
    undo: list[str] = field(default_factory=list)
    truncated: bool = False

    @property
    def ok(self) -> bool:
        return self.verdict in ("ok", "not_for_members")


@dataclass
class Probe:
    """What :func:`probe` found for one user."""

    user_id: str
    email: str | None
    tenants: list[str]
    tables: list[TableExposure]

    def table(self, name: str) -> TableExposure:
        return next(t for t in self.tables if t.table == name)

    @property
    def ok(self) -> bool:
        return all(t.ok for t in self.tables)

    def frame(self):
        """One row per table: verdict, rows seen per own / foreign organization, the policies named."""
        import pandas as pd

        return pd.DataFrame([{
            "table": t.table, "verdict": t.verdict, "own orgs seen": len([k for k in t.visible if k in self.tenants]),
            "foreign orgs seen": len(t.foreign), "foreign rows": sum(t.foreign.values()),
            "own rows seen / sampled": f"{t.own_seen if t.own_seen is not None else '-'} / {t.own_expected}",
            "sqlstate": t.sqlstate or "", "responsible": ", ".join(t.responsible),
        } for t in self.tables])


def probe(session, user: str, *, table: str | None = None, max_rows: int = MAX_ROWS,
          thresholds: dict[str, Any] | None = None) -> Probe:
    """Probe what ``user`` (uuid or e-mail) sees in every tenant table (or only ``table``).

    Raises :class:`UsageError` for an unknown user or table (before any probe), and
    :class:`PrivilegeError` when the session cannot ``SET ROLE authenticated`` or cannot read
    the tenant tables past RLS (connect as ``postgres``). Nothing is written: everything runs in
    a transaction (or savepoint) that is rolled back."""
    check = REGISTRY["tenant_isolation"]
    t = {**check.thresholds, **(thresholds or {})}
    ctx = Context.load(session)
    t["schemas"] = list(ctx.exposed_schemas)
    who = _resolve_user(session, user)
    if not can_set_role(ctx, check, "authenticated"):
        raise PrivilegeError(f"role {ctx.current_user} cannot SET ROLE authenticated, so it cannot read as the user",
                             hint=f"grant authenticated to {quote_ident(ctx.current_user)}; or connect as postgres")
    tables = fetch(ctx, check, check.sql(ctx.server_version), t)
    if table is not None:
        tables = [r for r in tables if table in (r["name"], r["table"], f"{r['schema']}.{r['table']}")]
        if not tables:
            raise UsageError(f"table {table!r} is not a tenant table of {', '.join(t['schemas'])}",
                             hint="give a table with an org_id column (public.calls, public.invoices…), or leave it out")
    hidden = [r["name"] for r in tables if not r["sampleable"]]
    if hidden:
        raise PrivilegeError(f"row level security hides rows of {', '.join(hidden[:5])} from {ctx.current_user}: "
                             "the truth to compare the user with is unknown", hint="connect as postgres (BYPASSRLS)")
    ids = {"membership": sql.Identifier(*t["membership_table"].split(".", 1)),
           "member": sql.Identifier(t["member_column"]), "tenant": sql.Identifier(t["tenant_column"])}
    with _rolled_back(session) as cur:
        cur.execute(sql.SQL(_MEMBERSHIPS).format(**ids), {"user_id": who["id"]})
        tenants = [r["tenant"] for r in cur.fetchall()]  # the column's own type, as the own-rows query binds it
        out = [_one(ctx, check, cur, r, who["id"], tenants, t, max_rows) for r in tables]
    return Probe(who["id"], who["email"], [str(x) for x in tenants], out)


@contextlib.contextmanager
def _rolled_back(session) -> Iterator[psycopg.Cursor]:
    """A transaction (a savepoint inside the caller's) that is always rolled back: the role, the
    claims and every setting end with it. Read-only when it is a transaction of its own."""
    conn = session.conn
    top = conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    with conn.transaction(force_rollback=True), conn.cursor(row_factory=dict_row) as cur:
        if top:
            cur.execute("select set_config('transaction_read_only', 'on', true)")
        cur.execute("select set_config('statement_timeout', %s, true), set_config('lock_timeout', '2s', true),"
                    " set_config('search_path', 'pg_catalog', true)", (session.statement_timeout,))
        yield cur


def _resolve_user(session, user: str) -> dict[str, Any]:
    if not isinstance(user, str) or not user.strip():
        raise UsageError("user is required: a uuid or an e-mail of auth.users")
    rows = session.fetch(_USER, {"user": user.strip()})
    if len(rows) != 1:
        raise UsageError(f"no user {user!r} in auth.users" if not rows else f"{user!r} matches several users",
                         hint="give the user's uuid (auth.users.id) or exact e-mail")
    return rows[0]


def _as_user(cur, user_id: str) -> None:
    claims = {"sub": user_id, "role": "authenticated", "aud": "authenticated"}
    cur.execute("set local role authenticated")
    cur.execute("select set_config('request.jwt.claims', %s, true), set_config('request.jwt.claim.sub', %s, true),"
                " set_config('request.jwt.claim.role', 'authenticated', true)", (json.dumps(claims), user_id))


def _one(ctx, check, cur, r, user_id, tenants, t, max_rows) -> TableExposure:
    own = {str(x) for x in tenants}
    ids = {"table": table_identifier(r), "key": sql.Identifier(r["key_column"])}
    cur.execute(_POLICIES, {"table": r["name"]})
    policies = cur.fetchall()
    ex = TableExposure(r["name"], "ok", granted=r["authenticated_select"], rls_enabled=r["rls_enabled"],
                       policies=policies)
    if not (r["authenticated_select"] or r["authenticated_policies"]):
        ex.verdict = "not_for_members"
        return ex
    # The rows the user must see: up to rows_per_tenant of each own tenant, as the connected role.
    mine = own_rows(ctx, check, cur, check.sql(ctx.server_version, "own"), r, set(tenants), t) if tenants else []
    ex.own_expected = len(mine)
    probe_sql = sql.SQL(check.sql(ctx.server_version, "probe")).format(table=table_identifier(r), pk=sql.Identifier(r["pk_column"]))
    try:
        with cur.connection.transaction(force_rollback=True):
            _as_user(cur, user_id)
            cur.execute(sql.SQL(_VISIBLE).format(**ids), {"max_rows": max_rows})
            ex.visible = {row["tenant"]: row["rows"] for row in cur.fetchall()}
            if mine:
                cur.execute(probe_sql, {"ids": mine})
                ex.own_seen = cur.fetchone()["leaked"]
            for p in policies:
                p["foreign_rows"] = p["own_rows"] = None
                if p["permissive"] and p["for_authenticated"] and p["command"] in ("select", "all"):
                    # The policy's own deparsed text, run as a filter: what it admits on its own (without a
                    # using expression, nothing: the server adds no clause for it).
                    expr = sql.SQL((p["using_expr"] or "false").replace("%", "%%"))  # a literal %, not a placeholder
                    cur.execute(sql.SQL(_ADMITTED).format(expr=expr, **ids), {"own": sorted(own), "max_rows": max_rows})
                    p.update(cur.fetchone())
    except psycopg.errors.InsufficientPrivilege as exc:  # 42501: no SELECT grant, RLS never ran
        ex.verdict, ex.sqlstate = "denied", exc.sqlstate
        ex.responsible = []
        ex.fix = [f"grant select on {r['name']} to authenticated;"]
        ex.undo = [f"revoke select on {r['name']} from authenticated;"]
        return ex
    ex.truncated = sum(ex.visible.values()) >= max_rows
    ex.foreign = {k: v for k, v in ex.visible.items() if k not in own}
    select_policies = [p for p in policies if p["permissive"] and p["for_authenticated"] and p["command"] in ("select", "all")]
    if ex.foreign:
        ex.verdict = "leak"
        ex.responsible = [p["name"] for p in select_policies if p["foreign_rows"]]
        if not r["rls_enabled"]:
            ex.fix = [f"alter table {r['name']} enable row level security;"]
            ex.undo = [f"alter table {r['name']} disable row level security;"]
        else:
            _leak_fix(ex, r, select_policies, t)
    elif mine and ex.own_seen == 0:
        ex.verdict = "locked_out"
        ex.responsible = [p["name"] for p in select_policies]
        ex.fix = _statements(tenant_policy_fix(r, t))
        ex.undo = [_restore(r["name"], p) for p in select_policies] or [
            f"drop policy if exists {quote_ident(r['table'] + '_tenant_select')} on {r['name']};"]
    elif mine and ex.own_seen < len(mine):
        ex.verdict = "partial"
        ex.responsible = [p["name"] for p in select_policies]
    return ex


def _leak_fix(ex: TableExposure, r, select_policies, t) -> None:
    """Drop the policies that admit foreign rows when another policy still admits the member's own
    rows; otherwise rewrite them to the member's-organizations expression."""
    culprits = [p for p in select_policies if p["foreign_rows"]]
    keepers = [p for p in select_policies if not p["foreign_rows"] and p["own_rows"]]
    if keepers or not ex.own_expected:
        ex.fix = [f"drop policy {quote_ident(p['name'])} on {r['name']};" for p in culprits]
        ex.undo = [create_policy_sql(r["name"], p) for p in culprits]
        return
    narrowed = {**r, "authenticated_policy_names": [p["name"] for p in culprits],
                "authenticated_policy_commands": [p["command"] for p in culprits]}
    ex.fix = _statements(tenant_policy_fix(narrowed, t))
    ex.undo = [_restore(r["name"], p) for p in culprits]


def _statements(text: str) -> list[str]:
    """The SQL lines of a remediation text (its ``--`` comments dropped)."""
    return [line for line in (x.strip() for x in text.splitlines()) if line and not line.startswith("--")]


def create_policy_sql(table: str, p: dict[str, Any]) -> str:
    """``create policy`` re-creating ``p`` as ``pg_policy`` holds it (the undo of a drop)."""
    text = (f"create policy {quote_ident(p['name'])} on {table} as {'permissive' if p['permissive'] else 'restrictive'} "
            f"for {p['command']} to {', '.join(p['roles'])}")
    if p["using_expr"] is not None:
        text += f" using ({p['using_expr']})"
    if p["check_expr"] is not None:
        text += f" with check ({p['check_expr']})"
    return text + ";"


def _restore(table: str, p: dict[str, Any]) -> str:
    """``alter policy`` giving ``p`` back its ``using`` / ``with check`` (the undo of an alter)."""
    text = f"alter policy {quote_ident(p['name'])} on {table}"
    if p["using_expr"] is not None:
        text += f" using ({p['using_expr']})"
    if p["check_expr"] is not None:
        text += f" with check ({p['check_expr']})"
    return text + ";"


# ----------------------------------------------------------------------------- findings


def findings(result: Probe) -> list[Finding]:
    """The probe as findings (``tenant_data_exposure.<verdict>``), worst first: leaks, then
    lock-outs and grant problems, then partial views; one ``ok`` finding when all is well."""
    order = {"leak": 0, "locked_out": 1, "denied": 2, "partial": 3}
    out = [_finding(result, ex) for ex in sorted(result.tables, key=lambda e: (order.get(e.verdict, 9), e.table))
           if ex.verdict in order]
    if out:
        return out
    probed = [ex for ex in result.tables if ex.verdict == "ok"]
    return [Finding(f"{PLAYBOOK}.ok", Severity.OK,
                    f"user {result.email or result.user_id} sees their own organizations' rows and nothing else "
                    f"in {len(probed)} tenant tables", result.user_id, len(probed), None,
                    f"member of {len(result.tenants)} organization(s); probed as authenticated with the user's JWT "
                    "claims in a rolled-back transaction.", "")]


def _finding(result: Probe, ex: TableExposure) -> Finding:
    who = result.email or result.user_id
    policies = ", ".join(map(quote_ident, ex.responsible)) or "none"
    remediation = "\n".join(ex.fix) + "\n-- undo:\n" + "\n".join(ex.undo) if ex.fix else ""
    data = {"user_id": result.user_id, "tenants": result.tenants, "verdict": ex.verdict, "responsible": ex.responsible,
            "foreign": ex.foreign, "own_expected": ex.own_expected, "own_seen": ex.own_seen, "fix": ex.fix,
            "undo": ex.undo}
    if ex.verdict == "leak":
        rows = sum(ex.foreign.values())
        return Finding(f"{PLAYBOOK}.leak", Severity.CRITICAL,
                       f"{ex.table}: {who} sees {rows} rows of {len(ex.foreign)} other organization(s) "
                       + (f"through policy {policies}" if ex.rls_enabled else "(row level security is disabled)"),
                       ex.table, rows, 0,
                       f"member of {', '.join(result.tenants) or 'no organization'}; visible rows of organizations "
                       f"they do not belong to: {', '.join(f'{k} ({v})' for k, v in list(ex.foreign.items())[:5])}. "
                       "Permissive policies are OR-ed: one that is wider than the tenant opens the table"
                       + ("" if ex.rls_enabled else "; row level security is disabled on it") + ".",
                       remediation, data)
    if ex.verdict == "denied":
        return Finding(f"{PLAYBOOK}.denied", Severity.WARNING,
                       f"{ex.table}: {who} gets permission denied (SQLSTATE {ex.sqlstate}): SELECT is not granted to "
                       "authenticated — a grant problem, not row level security", ex.table, ex.sqlstate, None,
                       "The read failed before any policy ran; the table's policies for members: "
                       + (", ".join(quote_ident(p["name"]) for p in ex.policies if p["for_authenticated"]) or "none") + ".",
                       remediation, data)
    if ex.verdict == "locked_out":
        return Finding(f"{PLAYBOOK}.locked_out", Severity.WARNING,
                       f"{ex.table}: {who} sees none of their own organizations' rows (policy {policies})",
                       ex.table, 0, ex.own_expected,
                       f"{ex.own_expected} sampled rows of their organizations exist; row level security filtered every "
                       "one away: no permissive SELECT policy admits them (a policy comparing the tenant column with "
                       "the user's id, org_id = auth.uid(), does exactly that).", remediation, data)
    return Finding(f"{PLAYBOOK}.partial", Severity.INFO,
                   f"{ex.table}: {who} sees {ex.own_seen} of {ex.own_expected} sampled rows of their own organizations",
                   ex.table, ex.own_seen, ex.own_expected,
                   f"through {policies}: right if a policy is meant to be narrower than the tenant, a bug otherwise.",
                   "", data)


# ----------------------------------------------------------------------------- for the playbook


def sample_member(session, thresholds: dict[str, Any] | None = None) -> str:
    """A member of two or more organizations (the smallest user id): who an interactive run probes
    when no user is given."""
    t = {**REGISTRY["tenant_isolation"].thresholds, **(thresholds or {})}
    query = sql.SQL("select m.{member}::text as user_id from {membership} m group by m.{member}"
                    " having count(distinct m.{tenant}) >= 2 order by m.{member} limit 1").format(
        membership=sql.Identifier(*t["membership_table"].split(".", 1)),
        member=sql.Identifier(t["member_column"]), tenant=sql.Identifier(t["tenant_column"]))
    found = session.scalar(query)
    if found is None:
        raise UsageError("no member of two organizations to probe with", hint="give user=<uuid or e-mail>")
    return found


def worst_table(result: Probe) -> str | None:
    """The table of the worst finding (a leak before a lock-out before a missing grant), or None."""
    worst = [f for f in findings(result) if f.severity in (Severity.CRITICAL, Severity.WARNING)]
    return worst[0].object if worst else None


def policies_frame(result: Probe):
    """Every policy of the tables with a problem, and what each admits on its own as the user."""
    import pandas as pd

    columns = ("table", "verdict", "policy", "permissive", "command", "roles", "using", "with_check", "foreign_rows",
               "own_rows", "responsible")
    rows = [{"table": ex.table, "verdict": ex.verdict, "policy": p["name"], "permissive": p["permissive"],
             "command": p["command"], "roles": ", ".join(p["roles"]), "using": p["using_expr"],
             "with_check": p["check_expr"], "foreign_rows": p.get("foreign_rows"), "own_rows": p.get("own_rows"),
             "responsible": p["name"] in ex.responsible}
            for ex in result.tables if not ex.ok for p in ex.policies]
    return pd.DataFrame(rows, columns=list(columns))
