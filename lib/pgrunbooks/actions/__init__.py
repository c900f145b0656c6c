"""Mutating actions: one :class:`~pgrunbooks.actions.base.Action` per verb.

``plan_*`` is a dry run you can read; ``apply(plan, confirm=…)`` does it (audited, verified)::

    >>> from pgrunbooks.db import connect
    >>> from pgrunbooks.actions import plan_archive, apply
    >>> s = connect("local", runbook="archive_old_data", read_only=False)
    >>> plan = plan_archive(s)            # changes nothing
    >>> print(plan)                       # SQL, rows, duration, undo, what confirm must be
    >>> result = apply(plan, confirm=plan.confirm)

The actions: :data:`ARCHIVE` (``archive/``), :data:`VACUUM_ANALYZE` (``vacuum.py``),
:data:`REINDEX` (``reindex.py``), :data:`TERMINATE_SESSIONS` (``terminate.py``); each
``plan_*`` function is its action's ``plan`` method. See ``docs/actions.md``.
"""

from pgrunbooks.actions.archive import ARCHIVE, DEFAULT_PAIRS, plan_archive
from pgrunbooks.actions.base import Action, ActionResult, Plan, Verified, apply
from pgrunbooks.actions.confirm import confirm_matches
from pgrunbooks.actions.reindex import REINDEX, plan_reindex
from pgrunbooks.actions.terminate import TERMINATE_SESSIONS, plan_terminate
from pgrunbooks.actions.vacuum import VACUUM_ANALYZE, plan_vacuum_analyze
from pgrunbooks.errors import (
    ActionError,
    CheckFailedError,
    ConcurrentChangeError,
    ConfirmationError,
    ConnectionLostError,
    LockTimeoutError,
    PreconditionError,
    PrivilegeError,
    SkippedByServerError,
    StatementTimeoutError,
    VerificationError,
)

#: Every action, for docs and contract tests.
ACTIONS: tuple[Action, ...] = (VACUUM_ANALYZE, REINDEX, ARCHIVE, TERMINATE_SESSIONS)

__all__ = [
    "ACTIONS",
    "ARCHIVE",
    "DEFAULT_PAIRS",
    "REINDEX",
    "TERMINATE_SESSIONS",
    "VACUUM_ANALYZE",
    "Action",
    "ActionError",
    "ActionResult",
    "CheckFailedError",
    "ConcurrentChangeError",
    "ConfirmationError",
    "ConnectionLostError",
    "LockTimeoutError",
    "Plan",
    "PreconditionError",
    "PrivilegeError",
    "SkippedByServerError",
    "StatementTimeoutError",
    "Verified",
    "VerificationError",
    "apply",
    "confirm_matches",
    "plan_archive",
    "plan_reindex",
    "plan_terminate",
    "plan_vacuum_analyze",
]
