"""Mutating actions: ``plan_*`` (a dry run you can read) → ``apply(plan, confirm=…)`` (audited, verified).

>>> from pgrunbooks.db import connect
>>> from pgrunbooks.actions import plan_archive, apply
>>> s = connect("local", runbook="archive_old_data", read_only=False)
>>> plan = plan_archive(s)            # changes nothing
>>> print(plan)                       # SQL, rows, duration, undo, what confirm must be
>>> result = apply(plan, confirm=plan.confirm)

See ``docs/actions.md``.
"""

from pgrunbooks.actions.archive import DEFAULT_PAIRS, plan_archive
from pgrunbooks.actions.base import (
    ActionResult,
    ConcurrentChangeError,
    ConnectionLostError,
    Plan,
    StatementTimeoutError,
    VerificationError,
    apply,
    confirm_matches,
)
from pgrunbooks.actions.maintenance import plan_reindex, plan_vacuum_analyze
from pgrunbooks.actions.sessions import plan_terminate
from pgrunbooks.errors import (
    ActionError,
    ConfirmationError,
    LockTimeoutError,
    PreconditionError,
    PrivilegeError,
)

__all__ = [
    "DEFAULT_PAIRS",
    "ActionError",
    "ActionResult",
    "ConcurrentChangeError",
    "ConfirmationError",
    "ConnectionLostError",
    "LockTimeoutError",
    "Plan",
    "PreconditionError",
    "PrivilegeError",
    "StatementTimeoutError",
    "VerificationError",
    "apply",
    "confirm_matches",
    "plan_archive",
    "plan_reindex",
    "plan_terminate",
    "plan_vacuum_analyze",
]
