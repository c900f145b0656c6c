"""The action contract: an :class:`Action` makes a :class:`Plan`; ``apply(plan, confirm=...)`` does it.

An action is one verb (archive, vacuum_analyze, reindex, terminate_sessions): a subclass
of :class:`Action` that owns its name, its title, what ``confirm`` is, the columns of its
stable outline, the parameters it validates (in :meth:`Action.plan`) and the work
(:meth:`Action.execute`). A :class:`Plan` knows the Action that made it.

A :class:`Plan` is printable and reviewable: the SQL it will run, the objects and rows it
touches, a rough duration, the undo when there is one, warnings, blockers (reasons it
will refuse to run) and the ``confirm`` value :func:`apply` demands. Making a plan
changes nothing.

:func:`apply` refuses (:class:`~pgrunbooks.errors.ConfirmationError`) unless ``confirm``
matches, refuses (:class:`~pgrunbooks.errors.PreconditionError`) when the plan has
blockers, then hands over to the plan's action, which re-checks, runs bounded
transactions and returns what it verified (:class:`Verified`, in an
:class:`ActionResult`). Whatever happens, one audit record is appended
(:mod:`pgrunbooks.audit`). Driver errors are translated by SQLSTATE class
(:mod:`pgrunbooks.actions.sqlstate`).
"""

from __future__ import annotations

import abc
import base64
import contextlib
import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterator

from pgrunbooks import audit
from pgrunbooks.actions import text
from pgrunbooks.actions.auditing import audited_plan, failed_outcome, write_audit
from pgrunbooks.actions.preconditions import refuse_unless_ready
from pgrunbooks.actions.sqlstate import translate_errors
from pgrunbooks.errors import ActionError, VerificationError

# ---------------------------------------------------------------------------------------------
# Action


class Action(abc.ABC):
    """One verb that changes the database. Subclass it to add an action (see docs/actions.md).

    Class attributes: ``name`` (the id in findings ``action.<name>.*`` and in the audit
    record), ``title``, ``confirm_hint`` (what ``confirm`` must be, in words) and
    ``outline_columns`` (the object columns that say what is done to what, stable on the
    seeded sandbox). :meth:`plan` validates its parameters and returns a :class:`Plan`
    (via :meth:`new_plan`) without changing anything; :meth:`execute` is called by
    :func:`apply` once ``confirm`` matched, and returns an :class:`ActionResult` (via
    :meth:`result`) with at least one :class:`Verified` post-condition.
    """

    name: ClassVar[str]
    title: ClassVar[str]
    confirm_hint: ClassVar[str]
    outline_columns: ClassVar[tuple[str, ...]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Every action's plan() is wrapped once, here, so no action can forget it: a plan made
        # to be applied that fails (a bad value, a lock held) leaves a ``refused`` audit record.
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("plan")
        if own is not None and not getattr(own, "__isabstractmethod__", False):
            cls.plan = audited_plan(own)

    @abc.abstractmethod
    def plan(self, session, *args: Any, **kwargs: Any) -> "Plan":
        """A dry run: validate the parameters, read the database, change nothing."""

    @abc.abstractmethod
    def execute(self, plan: "Plan", ctx: "Context") -> "ActionResult":
        """Re-check the plan against the database, do the work in bounded steps, verify it."""

    def apply(self, plan: "Plan", confirm: Any = None, **kwargs: Any) -> "ActionResult":
        """:func:`apply` for a plan this action made."""
        if plan.action is not self:
            raise ActionError(f"{self.name} cannot apply a plan of {plan.action.name}")
        return apply(plan, confirm, **kwargs)

    def new_plan(self, session, *, summary: str, confirm: Any, parameters: dict[str, Any],
                 state: dict[str, Any], **fields: Any) -> "Plan":
        """A :class:`Plan` of this action on ``session``'s target, database and runbook."""
        return Plan(
            action=self,
            title=self.title,
            summary=summary,
            target=str(session.target),
            database=session.scalar("select current_database()"),
            runbook=session.runbook,
            confirm=confirm,
            confirm_hint=self.confirm_hint,
            parameters=parameters,
            state=state,
            session=session,
            **fields,
        )

    def result(self, ctx: "Context", *, outcome: str, summary: str, verified: list["Verified"],
               failure_hint: str | None = None, **fields: Any) -> "ActionResult":
        """The :class:`ActionResult` of this action; raises :class:`VerificationError` (with
        ``failure_hint``) when a verification failed."""
        failed = [v for v in verified if not v.ok]
        if failed:
            raise VerificationError(
                "post-conditions failed: " + "; ".join(f"{v.name} ({v.detail})" for v in failed), hint=failure_hint
            )
        return ActionResult(action=self, outcome=outcome, summary=summary, verified=list(verified),
                            timings=dict(ctx.timings), **fields)

    def __repr__(self) -> str:
        return f"<action {self.name}>"


# ---------------------------------------------------------------------------------------------
# Plan, verification, result


@dataclass
class Plan:
    """What an action will do, for a human to review before :func:`apply`.

    ``confirm`` is the value ``apply`` requires (the number of rows, the database name,
    the list of pids…). ``blockers`` non-empty means ``apply`` will refuse. ``state`` is
    the action's own data for re-checking and running (not shown).
    """

    action: Action
    title: str
    summary: str
    target: str
    database: str
    runbook: str
    confirm: Any
    confirm_hint: str
    statements: list[str] = field(default_factory=list)
    objects: list[dict[str, Any]] = field(default_factory=list)
    rows: int | None = None
    estimated_seconds: float | None = None
    undo: str | None = None
    warnings: list[str] = field(default_factory=list)
    blockers: list[str] = field(default_factory=list)
    parameters: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    created_at: str = field(default_factory=audit.utc_now)
    #: The runbook parameters that reproduce this plan, as the printed apply command passes
    #: them (set by :func:`pgrunbooks.notebook.act.show`); empty for a plan made in Python.
    rerun: dict[str, Any] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict, repr=False)
    session: Any = field(default=None, repr=False, compare=False)

    @property
    def ready(self) -> bool:
        """True when nothing blocks ``apply`` (it still needs ``confirm``)."""
        return not self.blockers

    @property
    def nothing_to_do(self) -> bool:
        return not self.objects or (self.rows == 0)

    def apply(self, confirm: Any = None, **kwargs: Any) -> "ActionResult":
        """Shortcut for :func:`apply(self, confirm, ...) <apply>`."""
        return apply(self, confirm, **kwargs)

    @property
    def fingerprint(self) -> str:
        """A short stable digest of what was reviewed: the action, the database, every
        plan-shaping parameter (:attr:`rerun`, else :attr:`parameters`) and the planned
        objects (their outline columns: what is done to what, not row counts or sizes).

        Two plans with the same fingerprint do the same thing to the same objects; the
        applying run of a runbook must be given its dry run's (``plan_fingerprint``).
        """
        columns = self.action.outline_columns
        content = {
            "action": self.action.name,
            "database": self.database,
            "parameters": audit.scrub(self.rerun or self.parameters),
            "objects": sorted(json.dumps([audit.scrub(o.get(c)) for c in columns], default=str) for o in self.objects),
        }
        digest = hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).digest()
        # base32 in lower case: letters and digits, never read by YAML as a number or a boolean
        return base64.b32encode(digest).decode()[:12].lower()

    def frame(self):
        """The objects as a pandas DataFrame (one row per table, index, session…)."""
        import pandas as pd

        return pd.DataFrame(self.objects)

    def findings(self) -> list[Any]:
        """The plan as findings for ``rb.record``: one ``info`` summary, one ``warning`` per warning and per blocker."""
        from pgrunbooks.findings import Finding

        name = self.action.name
        out = [
            Finding(
                check_id=f"action.{name}.plan",
                severity="info",
                title=f"dry run: {self.summary.split('. ')[0]}",
                object=self.database,
                value=self.rows if self.rows is not None else len(self.objects),
                detail=self.summary,
                remediation=f"to apply: dry_run = False, confirm = {self.confirm_text()} ({self.confirm_hint})",
            )
        ]
        # Warnings are things apply will do anyway but a reviewer must know (an index it
        # cannot rebuild, rows it will skip): a scheduled dry run should surface them.
        for kind, items, remediation in (
            ("warning", self.warnings, "read it before applying; the plan's notes say what to do"),
            ("blocked", self.blockers, "resolve it, then make a new plan"),
        ):
            for i, item in enumerate(items, 1):
                out.append(
                    Finding(
                        check_id=f"action.{name}.{kind}",
                        severity="warning",
                        title=item.split(": ")[0][:160],
                        object=f"{self.database}#{i}",
                        detail=item,
                        remediation=remediation,
                    )
                )
        return out

    def audit_summary(self) -> dict[str, Any]:
        """What the audit record keeps of the plan."""
        return {
            "title": self.title,
            "summary": self.summary,
            "rows": self.rows,
            "objects": self.objects[:200],
            "confirm": self.confirm,
            "fingerprint": self.fingerprint,
            "created_at": self.created_at,
            "warnings": self.warnings,
        }

    def confirm_text(self) -> str:
        """``confirm`` as the plan prints it (Python literal)."""
        return repr(self.confirm)

    def __str__(self) -> str:
        return text.plan_text(self)

    def _repr_markdown_(self) -> str:
        return text.plan_markdown(self)


@dataclass(frozen=True)
class Verified:
    """One post-condition read back from the database after the work: ``ok`` or not, and the evidence."""

    name: str
    ok: bool
    detail: str


@dataclass
class ActionResult:
    """What :func:`apply` did and verified. ``outcome``: applied | partial | nothing_to_do."""

    action: Action
    outcome: str
    summary: str
    verified: list[Verified] = field(default_factory=list)
    objects: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    undo: str | None = None
    warnings: list[str] = field(default_factory=list)
    audit_id: str | None = None
    audit_path: str | None = None

    @property
    def ok(self) -> bool:
        """Something was verified and every verification held (a result that verified nothing is not ok)."""
        return bool(self.verified) and all(v.ok for v in self.verified)

    def frame(self):
        import pandas as pd

        return pd.DataFrame(self.objects)

    def findings(self) -> list[Any]:
        """The outcome as one finding for ``rb.record``: ``ok`` when applied and verified, or nothing to do."""
        from pgrunbooks.findings import Finding

        done = (self.outcome == "applied" and self.ok) or (
            self.outcome == "nothing_to_do" and all(v.ok for v in self.verified)
        )
        return [
            Finding(
                check_id=f"action.{self.action.name}.result",
                severity="ok" if done else "warning",
                title=f"{self.outcome}: {self.summary.split('. ')[0]}"[:200],
                object=self.audit_id or "",
                value=sum(1 for v in self.verified if v.ok),
                detail=self.summary + ("\n" + "\n".join(self.warnings) if self.warnings else ""),
                remediation="; ".join(self.warnings) or "",
            )
        ]

    def audit_summary(self) -> dict[str, Any]:
        """What the audit record keeps of the result (``verified`` as name → {ok, detail})."""
        return {
            "summary": self.summary,
            "verified": {v.name: {"ok": v.ok, "detail": v.detail} for v in self.verified},
            "objects": self.objects[:200],
            "warnings": self.warnings,
            "undo": self.undo,
        }

    def __str__(self) -> str:
        return text.result_text(self)

    def _repr_markdown_(self) -> str:
        return text.result_markdown(self)


# ---------------------------------------------------------------------------------------------
# Execution context


@dataclass
class Context:
    """Handed to :meth:`Action.execute`: timings, progress so far (audited on failure), options."""

    plan: Plan
    operator: str
    progress_bar: bool = True
    timings: dict[str, float] = field(default_factory=dict)
    progress: dict[str, Any] = field(default_factory=dict)
    current: str = ""

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Time a step under ``name``; errors inside it are translated (see :func:`translate_errors`)."""
        previous, self.current = self.current, name
        started = time.monotonic()
        try:
            with translate_errors(name, self.plan.parameters, self.progress):
                yield
        finally:
            self.timings[name] = round(self.timings.get(name, 0.0) + time.monotonic() - started, 4)
            self.current = previous


# ---------------------------------------------------------------------------------------------
# apply


def apply(
    plan: Plan,
    confirm: Any = None,
    *,
    operator: str | None = None,
    audit_log: str | None = None,
    audit_table: bool = False,
    progress: bool = True,
    fingerprint: str | None = None,
) -> ActionResult:
    """Run ``plan`` after checking ``confirm``; verify; append one audit record whatever happens.

    ``operator`` defaults to ``$PGRUNBOOKS_OPERATOR`` or the OS user. ``audit_log`` defaults
    to ``$PGRUNBOOKS_AUDIT_LOG`` or ``<project>/audit/audit.jsonl``. ``audit_table=True``
    also writes the record to ``pgrunbooks.audit_log`` in the target. ``fingerprint``: the
    :attr:`Plan.fingerprint` of the plan that was reviewed in another run (a runbook's dry
    run); when given (``""`` counts), ``plan`` must have it. A count ``confirm`` (rows) may
    differ from the plan's by ``plan.parameters["max_drift"]``; the drift is reported in
    the result. Raises :class:`~pgrunbooks.errors.UsageError` on a timeout of 0,
    :class:`ConfirmationError` on a missing or wrong ``confirm`` or fingerprint,
    :class:`PreconditionError` when the plan is blocked or stale, and typed
    :class:`ActionError` subclasses on failure.
    """
    if not isinstance(plan, Plan) or not isinstance(plan.action, Action):
        raise ActionError("apply() needs a Plan made by an action (plan_archive, plan_vacuum_analyze, ...)")
    who = audit.operator_name(operator)
    ctx = Context(plan=plan, operator=who, progress_bar=progress)
    started_wall = audit.utc_now()
    started = time.monotonic()
    record: dict[str, Any] = {
        "action": plan.action.name,
        "runbook": plan.runbook,
        "operator": who,
        "target": plan.target,
        "database": plan.database,
        "parameters": plan.parameters,
        "plan": plan.audit_summary(),
        "confirm_given": confirm,
    }
    if fingerprint is not None:
        record["fingerprint_given"] = fingerprint
    error: BaseException | None = None
    result: ActionResult | None = None
    try:
        drift = refuse_unless_ready(plan, confirm, fingerprint)
        # A first record before anything changes: a run killed outright (SIGKILL, power loss)
        # still leaves a trace of who started what, when.
        audit.append(audit.new_record(**dict(record, outcome="started", started_at=started_wall)), audit_log)
        with translate_errors(plan.action.name, plan.parameters, ctx.progress):
            result = plan.action.execute(plan, ctx)
        if drift:
            result.warnings.append(
                f"the plan counted {plan.confirm:,} rows, the reviewed plan {int(confirm):,}: a drift of {drift:+,} "
                f"rows since the review, within max_drift"
            )
        return result
    except BaseException as exc:  # KeyboardInterrupt too: the audit must record it
        error = exc
        raise
    finally:
        record["timings"] = dict(ctx.timings, total_s=round(time.monotonic() - started, 4))
        record["started_at"] = started_wall
        record["finished_at"] = audit.utc_now()
        if error is None and result is not None:
            record["outcome"] = result.outcome
            record["result"] = result.audit_summary()
        else:
            record["outcome"] = failed_outcome(error)
            record["error"] = {
                "type": type(error).__name__,
                "message": str(getattr(error, "message", error)),
                "hint": getattr(error, "hint", None),
            }
            record["progress"] = ctx.progress
        write_audit(plan, record, audit_log, audit_table, result)
