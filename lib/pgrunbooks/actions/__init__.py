"""Mutating actions: one :class:`~pgrunbooks.actions.base.Action` per verb.

``plan_*`` is a dry run you can read; ``apply(plan, confirm=…)`` does it (audited, verified)::

    >>> from pgrunbooks.db import connect
    >>> from pgrunbooks.actions import plan_archive, apply
    >>> s = connect("local", runbook="archive_old_data", read_only=False)
    >>> plan = plan_archive(s)            # changes nothing
    >>> print(plan)                       # SQL, rows, duration, undo, what confirm must be
    >>> result = apply(plan, confirm=plan.confirm)

The actions: :data:`ARCHIVE` (``archive/``), :data:`VACUUM_ANALYZE` (``vacuum.py``),
:data:`REINDEX` (``reindex.py``), :data:`TERMINATE_SESSIONS` (``terminate.py``),
:data:`DROP_SLOT` (``slots.py``), :data:`POLICY_FIX` (``policy_fix.py``) and the data migrations
in ``data/`` (:data:`ADD_ORGANIZATION`, :data:`BULK_IMPORT_USERS`, :data:`FIX_BILLING_RECORD`,
:data:`MERGE_ORGANIZATIONS`); each ``plan_*`` function is its action's ``plan`` method. See
``docs/actions.md`` and ``docs/migrations.md``.
"""

from pgrunbooks.actions.archive import ARCHIVE, DEFAULT_PAIRS, plan_archive
from pgrunbooks.actions.base import Action, ActionResult, Plan, Verified, apply
from pgrunbooks.actions.confirm import confirm_matches
from pgrunbooks.actions.data import (
    ADD_ORGANIZATION,
    BULK_IMPORT_USERS,
    FIX_BILLING_RECORD,
    MERGE_ORGANIZATIONS,
    plan_add_organization,
    plan_bulk_import_users,
    plan_fix_billing_record,
    plan_merge_organizations,
)
from pgrunbooks.actions.policy_fix import POLICY_FIX, plan_policy_fix
from pgrunbooks.actions.reindex import REINDEX, plan_reindex
from pgrunbooks.actions.slots import DROP_SLOT, plan_drop_slot
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
ACTIONS: tuple[Action, ...] = (
    VACUUM_ANALYZE, REINDEX, ARCHIVE, TERMINATE_SESSIONS, DROP_SLOT, POLICY_FIX,
    ADD_ORGANIZATION, BULK_IMPORT_USERS, FIX_BILLING_RECORD, MERGE_ORGANIZATIONS,
)

__all__ = [
    "ACTIONS",
    "ADD_ORGANIZATION",
    "ARCHIVE",
    "BULK_IMPORT_USERS",
    "DEFAULT_PAIRS",
    "DROP_SLOT",
    "FIX_BILLING_RECORD",
    "MERGE_ORGANIZATIONS",
    "POLICY_FIX",
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
    "plan_add_organization",
    "plan_archive",
    "plan_bulk_import_users",
    "plan_drop_slot",
    "plan_fix_billing_record",
    "plan_merge_organizations",
    "plan_policy_fix",
    "plan_reindex",
    "plan_terminate",
    "plan_vacuum_analyze",
]
