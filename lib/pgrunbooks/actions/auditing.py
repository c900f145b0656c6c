"""The audit records of an action: refusals while planning, and the record of an apply.

Every attempt leaves a record (:mod:`pgrunbooks.audit`): :func:`refusals_recorded` covers
the steps before :func:`~pgrunbooks.actions.base.apply` (planning, pinning cutoffs) on a
read-write session; :func:`write_audit` writes apply's own record, to the JSON Lines file
and optionally to the target's ``pgrunbooks.audit_log`` table.
"""

from __future__ import annotations

import contextlib
import functools
from typing import TYPE_CHECKING, Any, Iterator

from pgrunbooks import audit
from pgrunbooks.actions.sqlstate import translate_errors
from pgrunbooks.errors import ConfirmationError, PreconditionError, UsageError
from pgrunbooks.redact import redact

if TYPE_CHECKING:
    from pgrunbooks.actions.base import Action, ActionResult, Plan


@contextlib.contextmanager
def refusals_recorded(action: Action, session, parameters: dict[str, Any]) -> Iterator[None]:
    """Around the steps before :func:`apply` on a read-write session (planning, pinning):
    an error there leaves a ``refused`` audit record with its reason, then propagates.

    A read-only session is a dry run (nothing to audit). Driver errors are translated as
    in :func:`apply` (a lock held while planning is a :class:`~pgrunbooks.errors.LockTimeoutError`).
    """
    try:
        with translate_errors(f"{action.name} plan", parameters):
            yield
    except BaseException as exc:
        if session is not None and not getattr(session, "read_only", True):
            audit.append(audit.new_record(
                action=action.name,
                runbook=getattr(session, "runbook", None),
                operator=audit.operator_name(None),
                target=str(getattr(session, "target", "")),
                parameters=parameters,
                outcome="refused",
                started_at=audit.utc_now(),
                error={"type": type(exc).__name__, "message": str(getattr(exc, "message", exc)),
                       "hint": getattr(exc, "hint", None), "while": "planning"},
            ))
        raise


def audited_plan(plan_method):
    @functools.wraps(plan_method)
    def plan(self, session, *args: Any, **kwargs: Any) -> Plan:
        with refusals_recorded(self, session, dict(kwargs, args=list(args)) if args else dict(kwargs)):
            return plan_method(self, session, *args, **kwargs)

    return plan


def failed_outcome(error: BaseException | None) -> str:
    if isinstance(error, (ConfirmationError, PreconditionError, UsageError)):
        return "refused"
    if isinstance(error, KeyboardInterrupt):
        return "interrupted"
    return "failed"


def write_audit(plan: Plan, record: dict[str, Any], audit_log: str | None, audit_table: bool, result: ActionResult | None) -> None:
    full = audit.new_record(**record)
    if audit_table:
        try:
            from pgrunbooks.db import connect

            with connect(plan.session.target, runbook=plan.runbook, read_only=False) as s:
                audit.write_table(s.conn, full)
            full["audit_table"] = f"{audit.AUDIT_SCHEMA}.{audit.AUDIT_TABLE}"
        except Exception as exc:  # the file record below still says what happened
            full["audit_table_error"] = redact(f"{type(exc).__name__}: {exc}".strip())
    path = audit.append(full, audit_log)
    if result is not None:
        result.audit_id = full["id"]
        result.audit_path = str(path)
