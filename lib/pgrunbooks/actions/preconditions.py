"""What :func:`~pgrunbooks.actions.base.apply` checks before anything changes.

Bounded timeouts, the ``confirm`` value (within ``max_drift`` for a plan remade by another
run), the reviewed plan's fingerprint, no blockers, an open read-write session. Each
refusal is a typed error that says what to do next; nothing has been changed yet.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from pgrunbooks.actions.confirm import confirm_drift, confirm_matches
from pgrunbooks.errors import ActionError, ConfirmationError, PreconditionError, PrivilegeError, UsageError

if TYPE_CHECKING:
    from pgrunbooks.actions.base import Plan

# 0 in any unit: PostgreSQL reads it as "no limit" (SQLSTATE-free: it is our own check of a value).
_ZERO_TIMEOUT = re.compile(r"\s*(0+(\.0*)?|\.0+)\s*(us|ms|s|min|h|d)?\s*")


def refuse_unbounded(plan: Plan) -> None:
    """A mutation keeps its bounds: ``lock_timeout`` and ``statement_timeout`` of 0 mean none."""
    zero = [k for k in ("statement_timeout", "lock_timeout")
            if k in plan.parameters and _ZERO_TIMEOUT.fullmatch(str(plan.parameters[k]))]
    if zero:
        raise UsageError(
            f"refusing to apply {plan.action.name}: " + " and ".join(f"{k} = 0" for k in zero)
            + " would remove the bound on how long it may lock or run",
            hint="give a duration, e.g. statement_timeout='30s', lock_timeout='5s'",
        )


def refuse_unless_ready(plan: Plan, confirm: Any, fingerprint: str | None = None) -> int:
    """The checks before anything changes: bounded timeouts, confirm (within ``max_drift``), the
    reviewed fingerprint, blockers, an open read-write session. Returns the accepted drift (rows)."""
    name = plan.action.name
    refuse_unbounded(plan)
    drift = 0
    # Drift is the change between the reviewed plan and this one, remade by another run (bound
    # by its fingerprint); a Plan object applied where it was reviewed has not drifted.
    drifting = fingerprint is not None and "max_drift" in plan.parameters
    if not confirm_matches(plan.confirm, confirm):
        drift = confirm_drift(plan.confirm, confirm, plan.parameters.get("max_drift")) if drifting else None
        if drift is None:
            raise ConfirmationError(
                f"refusing to apply {name}: confirm={confirm!r} does not match the plan "
                f"(it asks for confirm={plan.confirm_text()}: {plan.confirm_hint}"
                + (", more than max_drift apart)" if drifting else ")"),
                hint=f"review the plan, then pass confirm={plan.confirm_text()}",
            )
    if fingerprint is not None and fingerprint != plan.fingerprint:
        raise ConfirmationError(
            f"refusing to apply {name}: "
            + (f"plan_fingerprint={fingerprint!r} is not this plan's ({plan.fingerprint!r}): its objects or "
               "parameters differ from the plan that was reviewed" if fingerprint else
               "no plan_fingerprint given: apply needs the fingerprint of the reviewed plan"),
            hint="run the dry run, review its plan, then paste the apply command it prints",
        )
    if plan.blockers:
        raise PreconditionError(
            f"refusing to apply {name}: the plan has blockers: " + "; ".join(plan.blockers),
            hint="resolve the blockers, then make a new plan",
        )
    session = plan.session
    if session is None or getattr(session, "_closed", False):
        raise ActionError("the plan's session is closed", hint="make a new plan on an open session")
    if getattr(session, "read_only", True):
        raise PrivilegeError(
            f"the session for {plan.runbook} is read-only: this action changes data",
            hint="open it with pgrunbooks.notebook.start(..., mutating=True) or db.connect(..., read_only=False)",
        )
    return drift
