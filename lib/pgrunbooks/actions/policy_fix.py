"""Fix a tenant table's row level security for one user's complaint, proven before it commits.

The plan probes the table as the user (:func:`pgrunbooks.incidents.exposure.probe`: the
``authenticated`` role with the user's JWT claims, rolled back) and proposes the fix the probe
derived — drop the policy that leaks, rewrite a policy that locks members out to the members'
organizations, grant the SELECT that is missing — or the statements the caller gives. Apply runs
them in ONE transaction (``SET LOCAL`` lock and statement timeouts), probes the table again
inside that transaction, and commits only if the user now sees their own organizations' rows and
nothing else; otherwise it rolls back and nothing changed. ``confirm`` is the table's name. The
audit record's undo holds the table's previous policy definitions, read from ``pg_policies``
(``pg_policy``) before the change.
"""

from __future__ import annotations

from typing import Any, Iterable

from psycopg import sql

from pgrunbooks.actions.base import Action, ActionResult, Context, Plan, Verified
from pgrunbooks.errors import UsageError, VerificationError
from pgrunbooks.incidents import exposure

VERDICT_TEXT = {
    "leak": "sees other organizations' rows",
    "locked_out": "sees none of their own organizations' rows",
    "denied": "is refused (no SELECT grant)",
    "partial": "sees only part of their own organizations' rows",
}


class PolicyFix(Action):
    """Apply a tenant table's policy (or grant) fix in one transaction; commit only if the re-probe passes."""

    name = "policy_fix"
    title = "Fix a tenant table's policies (re-probed before commit)"
    confirm_hint = "the table's name, as the plan prints it (schema.table)"
    outline_columns = ("table", "step", "statement")

    def plan(self, session, user: str, table: str, *, statements: Iterable[str] | None = None,
             lock_timeout: str = "5s", statement_timeout: str = "30s") -> Plan:
        """Dry run: probe ``table`` as ``user`` and list the fix (the probe's, or ``statements``). Changes nothing."""
        if not table:
            raise UsageError("table is required: the tenant table to fix (public.invoices…)")
        given = None if statements is None else [s.strip() for s in statements if s and s.strip()]
        found = exposure.probe(session, user, table=table)
        ex = found.tables[0]
        todo = ex.fix if given is None else given
        previous = [exposure.create_policy_sql(ex.table, p) for p in ex.policies]
        if given is None:
            undo = ex.undo
        else:  # the caller's statements: put every policy back as it was
            undo = ([f"drop policy if exists {exposure.quote_ident(p['name'])} on {ex.table};" for p in ex.policies]
                    + previous + ["-- and drop any policy the statements created"])
        blockers = []
        if ex.ok and given is None:
            summary = f"{ex.table}: user {found.email or found.user_id} already sees their own rows and nothing else."
        else:
            summary = (f"{ex.table}: user {found.email or found.user_id} {VERDICT_TEXT.get(ex.verdict, ex.verdict)}; "
                       f"{len(todo)} statement(s) in one transaction, then the table is probed again as the user "
                       "inside it: commit only if they see their own rows and nothing else.")
            if not todo:
                blockers.append(f"{ex.table}: no fix to propose for verdict {ex.verdict}: give statements=[…]")
        objects = [{"table": ex.table, "step": i, "statement": s, "verdict": ex.verdict} for i, s in enumerate(todo, 1)]
        return self.new_plan(
            session, summary=summary, confirm=ex.table, statements=todo, objects=objects,
            undo="\n".join(undo) or None, blockers=blockers,
            notes=([f"the policies responsible: {', '.join(ex.responsible)}"] if ex.responsible else [])
            + (["previous policies (pg_policies):", *previous] if previous else []),
            parameters={"user": user, "table": table, "statements": given, "lock_timeout": lock_timeout,
                        "statement_timeout": statement_timeout},
            state={"user_id": found.user_id, "table": ex.table, "statements": todo, "undo": undo,
                   "verdict": ex.verdict},
        )

    def execute(self, plan: Plan, ctx: Context) -> ActionResult:
        """The statements, the re-probe and the commit, in one transaction."""
        s, st = plan.session, plan.state
        if not st["statements"]:
            return self.result(ctx, outcome="nothing_to_do", summary=plan.summary,
                               verified=[Verified(f"{st['table']}: probed", True, "nothing to fix")], undo=None)
        after = None
        with ctx.step("fix, re-probe, commit"):
            try:
                with s.transaction(statement_timeout=plan.parameters["statement_timeout"],
                                   lock_timeout=plan.parameters["lock_timeout"]) as cur:
                    for statement in st["statements"]:
                        # The reviewed text, exactly as the plan showed it (names quoted by the probe);
                        # no parameters, so a % in it is a literal one.
                        cur.execute(sql.SQL(statement))
                    after = exposure.probe(s, st["user_id"], table=st["table"]).tables[0]
                    if not after.ok:
                        raise _Rejected(after)
            except _Rejected:
                pass
        if not after.ok:
            raise VerificationError(
                f"{st['table']}: after the fix the user still {VERDICT_TEXT.get(after.verdict, after.verdict)}: "
                "rolled back, nothing changed",
                hint="read the probe (the playbook's table) and write other statements; the policies are as before",
            )
        now = exposure.probe(s, st["user_id"], table=st["table"]).tables[0]
        verified = [
            Verified(f"{st['table']}: re-probed inside the transaction", after.ok,
                     f"verdict {after.verdict}, own rows {after.own_seen}/{after.own_expected}, "
                     f"foreign organizations {len(after.foreign)}"),
            Verified(f"{st['table']}: committed", now.ok, f"verdict {now.verdict} after the commit"),
        ]
        return self.result(ctx, outcome="applied",
                           summary=f"{st['table']}: {len(st['statements'])} statement(s) committed; the user sees their "
                                   "own organizations' rows and nothing else.",
                           verified=verified, objects=plan.objects, undo="\n".join(st["undo"]) or None)


class _Rejected(Exception):
    """Raised inside the fix's transaction so it rolls back: the re-probe did not pass."""

    def __init__(self, after: Any):
        super().__init__(after.verdict)
        self.after = after


POLICY_FIX = PolicyFix()
plan_policy_fix = POLICY_FIX.plan
