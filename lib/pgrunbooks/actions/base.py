"""The action contract: ``plan(...)`` is a dry run, ``apply(plan, confirm=...)`` does it.

A :class:`Plan` is printable and reviewable: the SQL it will run, the objects and rows it
touches, a rough duration, the undo when there is one, warnings, blockers (reasons it
will refuse to run) and the ``confirm`` value :func:`apply` demands. Making a plan
changes nothing.

:func:`apply` refuses (:class:`~pgrunbooks.errors.ConfirmationError`) unless ``confirm``
matches, refuses (:class:`~pgrunbooks.errors.PreconditionError`) when the plan has
blockers or the database changed since the plan, then hands over to the action's
executor, which re-checks, runs bounded transactions and verifies. Whatever happens,
one audit record is appended (:mod:`pgrunbooks.audit`). Driver errors are translated by
SQLSTATE class into pgrunbooks errors that say what was and was not changed and what
to do next.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import textwrap
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterator

import psycopg
import psycopg.errors as pgerr

from pgrunbooks import audit
from pgrunbooks.errors import (
    ActionError,
    ConfirmationError,
    LockTimeoutError,
    PgRunbooksError,
    PreconditionError,
    PrivilegeError,
)
from pgrunbooks.redact import redact


class StatementTimeoutError(ActionError):
    """A statement ran past ``statement_timeout`` (or an operator cancelled it); it was rolled back."""


class VerificationError(ActionError):
    """A post-condition did not hold; the transaction that would have broken it was rolled back."""


class ConcurrentChangeError(ActionError):
    """A deadlock or serialization failure with another session; the transaction was rolled back."""


class ConnectionLostError(ActionError):
    """The connection to the server broke mid-action; committed steps stay, the rest rolled back."""


# ---------------------------------------------------------------------------------------------
# Plan and result


@dataclass
class Plan:
    """What an action will do, for a human to review before :func:`apply`.

    ``confirm`` is the value ``apply`` requires (the number of rows, the database name,
    the list of pids…). ``blockers`` non-empty means ``apply`` will refuse. ``state`` is
    the action's own data for re-checking and running (not shown).
    """

    action: str
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

    def frame(self):
        """The objects as a pandas DataFrame (one row per table, index, session…)."""
        import pandas as pd

        return pd.DataFrame(self.objects)

    def findings(self) -> list[Any]:
        """The plan as findings for ``rb.record``: one ``info`` summary, one ``warning`` per warning and per blocker."""
        from pgrunbooks.findings import Finding

        out = [
            Finding(
                check_id=f"action.{self.action}.plan",
                severity="info",
                title=f"dry run: {self.summary.split('. ')[0]}",
                object=self.database,
                value=self.rows if self.rows is not None else len(self.objects),
                detail=self.summary,
                remediation=f"to apply: dry_run = False, confirm = {self._confirm_text()} ({self.confirm_hint})",
            )
        ]
        # Warnings are things apply will do anyway but a reviewer must know (an index it
        # cannot rebuild, rows it will skip): a scheduled dry run should surface them.
        for i, warning in enumerate(self.warnings, 1):
            out.append(
                Finding(
                    check_id=f"action.{self.action}.warning",
                    severity="warning",
                    title=warning.split(": ")[0][:160],
                    object=f"{self.database}#{i}",
                    detail=warning,
                    remediation="read it before applying; the plan's notes say what to do",
                )
            )
        for i, blocker in enumerate(self.blockers, 1):
            out.append(
                Finding(
                    check_id=f"action.{self.action}.blocked",
                    severity="warning",
                    title=blocker.split(": ")[0][:160],
                    object=f"{self.database}#{i}",
                    detail=blocker,
                    remediation="resolve it, then make a new plan",
                )
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able summary (what the audit log keeps): no session, no internal state."""
        d = {k: v for k, v in asdict(self).items() if k not in ("state", "session")}
        return audit.scrub(d)

    def _confirm_text(self) -> str:
        return repr(self.confirm)

    def __str__(self) -> str:
        lines = [f"PLAN  {self.title}  [{self.action}]"]
        lines.append(f"target {self.target} (database {self.database}), runbook {self.runbook}, planned {self.created_at}")
        lines.append("")
        lines += textwrap.wrap(self.summary, 100) or [""]
        if self.objects:
            lines.append("")
            lines.append(_text_table(self.objects))
        facts = []
        if self.rows is not None:
            facts.append(f"rows affected: {self.rows:,}")
        if self.estimated_seconds is not None:
            facts.append(f"expected duration: {_duration(self.estimated_seconds)} (rough)")
        if facts:
            lines += ["", "  ".join(facts)]
        for title, items in (("Notes", self.notes), ("Warnings", self.warnings), ("BLOCKERS (apply will refuse)", self.blockers)):
            if items:
                lines += ["", f"{title}:"] + [f"  - {item}" for item in items]
        if self.statements:
            lines += ["", "SQL:"] + [textwrap.indent(s.strip(), "    ") for s in self.statements]
        lines += ["", "Undo:", textwrap.indent((self.undo or "none").strip(), "    ")]
        lines += ["", f"To apply: apply(plan, confirm={self._confirm_text()})  -- {self.confirm_hint}"]
        return redact("\n".join(lines))

    def _repr_markdown_(self) -> str:
        md = [f"### Plan: {self.title}", ""]
        md.append(f"**Target** `{self.target}` (database `{self.database}`) · runbook `{self.runbook}` · planned {self.created_at}")
        md += ["", self.summary, ""]
        if self.objects:
            md += [_markdown_table(self.objects), ""]
        if self.rows is not None:
            md.append(f"- **Rows affected:** {self.rows:,}")
        if self.estimated_seconds is not None:
            md.append(f"- **Expected duration:** {_duration(self.estimated_seconds)} (rough)")
        for title, items in (("Notes", self.notes), ("Warnings", self.warnings), ("Blockers — apply will refuse", self.blockers)):
            if items:
                md += ["", f"**{title}:**", ""] + [f"- {_md_escape(item)}" for item in items]
        if self.statements:
            md += ["", "**SQL:**", "", "```sql"] + [s.strip() + "\n" for s in self.statements] + ["```"]
        md += ["", "**Undo:**", "", "```sql", (self.undo or "-- none").strip(), "```"]
        md += ["", f"**To apply:** set `dry_run = False` and `confirm = {self._confirm_text()}` ({self.confirm_hint})."]
        return redact("\n".join(md))


@dataclass
class ActionResult:
    """What :func:`apply` did and verified. ``outcome``: applied | partial | nothing_to_do."""

    action: str
    outcome: str
    summary: str
    verified: dict[str, dict[str, Any]] = field(default_factory=dict)
    objects: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    undo: str | None = None
    warnings: list[str] = field(default_factory=list)
    audit_id: str | None = None
    audit_path: str | None = None

    @property
    def ok(self) -> bool:
        return all(v.get("ok") for v in self.verified.values())

    def frame(self):
        import pandas as pd

        return pd.DataFrame(self.objects)

    def findings(self) -> list[Any]:
        """The outcome as one finding for ``rb.record`` (``ok`` when applied and verified)."""
        from pgrunbooks.findings import Finding

        severity = "ok" if self.ok and self.outcome in ("applied", "nothing_to_do") else "warning"
        return [
            Finding(
                check_id=f"action.{self.action}.result",
                severity=severity,
                title=f"{self.outcome}: {self.summary.split('. ')[0]}"[:200],
                object=self.audit_id or "",
                value=sum(1 for v in self.verified.values() if v.get("ok")),
                detail=self.summary + ("\n" + "\n".join(self.warnings) if self.warnings else ""),
                remediation="; ".join(self.warnings) or "",
            )
        ]

    def to_dict(self) -> dict[str, Any]:
        return audit.scrub(asdict(self))

    def __str__(self) -> str:
        lines = [f"RESULT  {self.action}: {self.outcome}", "", self.summary]
        if self.objects:
            lines += ["", _text_table(self.objects)]
        if self.verified:
            lines += ["", "Verified:"] + [
                f"  [{'ok' if v.get('ok') else 'FAILED'}] {k}: {v.get('detail', '')}" for k, v in self.verified.items()
            ]
        if self.warnings:
            lines += ["", "Warnings:"] + [f"  - {w}" for w in self.warnings]
        if self.undo:
            lines += ["", "Undo:", textwrap.indent(self.undo.strip(), "    ")]
        if self.timings:
            lines += ["", "Timings: " + ", ".join(f"{k} {v:.2f}s" for k, v in self.timings.items())]
        if self.audit_path:
            lines += [f"Audit record {self.audit_id} in {self.audit_path}"]
        return redact("\n".join(lines))

    def _repr_markdown_(self) -> str:
        md = [f"### Result: {self.action} — {self.outcome}", "", self.summary, ""]
        if self.objects:
            md += [_markdown_table(self.objects), ""]
        if self.verified:
            md += ["**Verified:**", ""] + [
                f"- {'✅' if v.get('ok') else '❌'} **{k}**: {_md_escape(str(v.get('detail', '')))}"
                for k, v in self.verified.items()
            ]
        if self.warnings:
            md += ["", "**Warnings:**", ""] + [f"- {_md_escape(w)}" for w in self.warnings]
        if self.undo:
            md += ["", "**Undo:**", "", "```sql", self.undo.strip(), "```"]
        if self.audit_path:
            md += ["", f"Audit record `{self.audit_id}` appended to `{self.audit_path}`."]
        return redact("\n".join(md))


# ---------------------------------------------------------------------------------------------
# Execution context


@dataclass
class Context:
    """Handed to an executor: timings, progress so far (audited on failure), options."""

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


Executor = Callable[[Plan, Context], ActionResult]
_EXECUTORS: dict[str, Executor] = {}


def register(action: str) -> Callable[[Executor], Executor]:
    """Decorator: ``@register("archive")`` makes ``apply`` run this executor for such plans."""

    def deco(fn: Executor) -> Executor:
        _EXECUTORS[action] = fn
        return fn

    return deco


# ---------------------------------------------------------------------------------------------
# Errors


def _pg_message(exc: psycopg.Error) -> str:
    diag = getattr(exc, "diag", None)
    primary = diag.message_primary if diag is not None and diag.message_primary else str(exc).strip().splitlines()[0:1]
    if isinstance(primary, list):
        primary = primary[0] if primary else type(exc).__name__
    return redact(str(primary))


def _committed_note(progress: dict[str, Any]) -> str:
    done = progress.get("committed")
    if done:
        return f" Work committed before this step is kept and consistent ({done}); re-run to continue."
    return " Nothing was changed."


@contextlib.contextmanager
def translate_errors(what: str, parameters: dict[str, Any] | None = None, progress: dict[str, Any] | None = None) -> Iterator[None]:
    """Turn driver errors into pgrunbooks errors by SQLSTATE class, saying what to do next.

    The transaction in flight was rolled back by the time the error surfaces (the
    ``Session.transaction`` block exits first), so messages say so.
    """
    parameters = parameters or {}
    progress = progress if progress is not None else {}
    lock_timeout = parameters.get("lock_timeout", "the lock_timeout")
    statement_timeout = parameters.get("statement_timeout", "the statement_timeout")
    rolled_back = f"The statement was rolled back.{_committed_note(progress)}"
    try:
        yield
    except PgRunbooksError:
        raise
    except pgerr.LockNotAvailable as exc:
        raise LockTimeoutError(
            f"{what}: could not get a lock within lock_timeout={lock_timeout} ({_pg_message(exc)}); "
            f"another session holds a conflicting lock. {rolled_back}",
            hint="find the blocker (select pid, pg_blocking_pids(pid), query from pg_stat_activity where "
            "wait_event_type = 'Lock'), let it finish or end it with runbooks/incidents/terminate_sessions, "
            "then re-run; raise lock_timeout only off-peak",
        ) from exc
    except pgerr.QueryCanceled as exc:
        raise StatementTimeoutError(
            f"{what}: statement cancelled ({_pg_message(exc)}): statement_timeout={statement_timeout} expired "
            f"or an operator cancelled it. {rolled_back}",
            hint="re-run with a smaller batch or a larger statement_timeout, preferably off-peak",
        ) from exc
    except pgerr.InsufficientPrivilege as exc:
        raise PrivilegeError(
            f"{what}: permission denied ({_pg_message(exc)}). {rolled_back}",
            hint="connect as the tables' owner (postgres on Supabase) or grant the missing privilege, then re-run",
        ) from exc
    except (pgerr.DeadlockDetected, pgerr.SerializationFailure) as exc:
        raise ConcurrentChangeError(
            f"{what}: conflict with a concurrent transaction ({_pg_message(exc)}). {rolled_back}",
            hint="re-run: the action re-plans from the current state",
        ) from exc
    except pgerr.ReadOnlySqlTransaction as exc:
        raise PrivilegeError(
            f"{what}: the session is read-only ({_pg_message(exc)}). {rolled_back}",
            hint="start the runbook with mutating=True (pgrunbooks.notebook.start(..., mutating=True)) "
            "and make sure the target is the primary, not a replica",
        ) from exc
    except psycopg.OperationalError as exc:
        raise ConnectionLostError(
            f"{what}: the connection failed ({_pg_message(exc)}). The transaction in flight was rolled back "
            f"by the server.{_committed_note(progress)}",
            hint="check the server, then re-run the action: it continues from where it stopped",
        ) from exc
    except psycopg.Error as exc:
        sqlstate = getattr(exc, "sqlstate", None) or "?"
        raise ActionError(
            f"{what}: the database refused ({sqlstate}: {_pg_message(exc)}). {rolled_back}",
            hint="read the message, fix the cause, re-plan and re-run",
        ) from exc


# ---------------------------------------------------------------------------------------------
# Confirmation


def _as_pid_set(value: Any) -> set[int] | None:
    if isinstance(value, int) and not isinstance(value, bool):  # one pid, e.g. -p confirm=1234
        return {value}
    if isinstance(value, str):
        parts = [p for p in value.replace(";", ",").replace(" ", ",").split(",") if p]
        try:
            return {int(p) for p in parts}
        except ValueError:
            return None
    if isinstance(value, (list, tuple, set, frozenset)):
        try:
            return {int(p) for p in value}
        except (TypeError, ValueError):
            return None
    return None


def confirm_matches(expected: Any, given: Any) -> bool:
    """Does ``given`` confirm ``expected``? Ints compare as numbers (``"12"`` is 12), lists as sets."""
    if given is None or isinstance(given, bool):
        return False
    if isinstance(expected, (list, tuple, set, frozenset)):
        pids = _as_pid_set(given)
        return pids is not None and pids == {int(p) for p in expected}
    if isinstance(expected, int):
        try:
            return int(str(given).replace(",", "").replace("_", "").strip()) == expected
        except ValueError:
            return False
    return str(given).strip() == str(expected)


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
) -> ActionResult:
    """Run ``plan`` after checking ``confirm``; verify; append one audit record whatever happens.

    ``operator`` defaults to ``$PGRUNBOOKS_OPERATOR`` or the OS user. ``audit_log`` defaults
    to ``$PGRUNBOOKS_AUDIT_LOG`` or ``<project>/audit/audit.jsonl``. ``audit_table=True``
    also writes the record to ``pgrunbooks.audit_log`` in the target. Raises
    :class:`ConfirmationError` on a missing or wrong ``confirm``, :class:`PreconditionError`
    when the plan is blocked or stale, and typed :class:`ActionError` subclasses on failure.
    """
    if not isinstance(plan, Plan):
        raise ActionError("apply() needs a Plan returned by one of the plan_* functions")
    who = audit.operator_name(operator)
    ctx = Context(plan=plan, operator=who, progress_bar=progress)
    started_wall = audit.utc_now()
    started = time.monotonic()
    record: dict[str, Any] = {
        "action": plan.action,
        "runbook": plan.runbook,
        "operator": who,
        "target": plan.target,
        "database": plan.database,
        "parameters": plan.parameters,
        "plan": {
            "title": plan.title,
            "summary": plan.summary,
            "rows": plan.rows,
            "objects": plan.objects[:200],
            "confirm": plan.confirm,
            "created_at": plan.created_at,
            "warnings": plan.warnings,
        },
        "confirm_given": confirm,
    }
    error: BaseException | None = None
    result: ActionResult | None = None
    try:
        if not confirm_matches(plan.confirm, confirm):
            raise ConfirmationError(
                f"refusing to apply {plan.action}: confirm={confirm!r} does not match the plan "
                f"(it asks for confirm={plan._confirm_text()}: {plan.confirm_hint})",
                hint=f"review the plan, then pass confirm={plan._confirm_text()}",
            )
        if plan.blockers:
            raise PreconditionError(
                f"refusing to apply {plan.action}: the plan has blockers: " + "; ".join(plan.blockers),
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
        executor = _EXECUTORS.get(plan.action)
        if executor is None:
            raise ActionError(f"no executor registered for action {plan.action!r}")
        # A first record before anything changes: a run killed outright (SIGKILL, power loss)
        # still leaves a trace of who started what, when.
        audit.append(audit.new_record(**dict(record, outcome="started", started_at=started_wall)), audit_log)
        with translate_errors(plan.action, plan.parameters, ctx.progress):
            result = executor(plan, ctx)
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
            record["result"] = {
                "summary": result.summary,
                "verified": result.verified,
                "objects": result.objects[:200],
                "warnings": result.warnings,
                "undo": result.undo,
            }
        else:
            record["outcome"] = (
                "refused"
                if isinstance(error, (ConfirmationError, PreconditionError))
                else "interrupted"
                if isinstance(error, KeyboardInterrupt)
                else "failed"
            )
            record["error"] = {
                "type": type(error).__name__,
                "message": str(getattr(error, "message", error)),
                "hint": getattr(error, "hint", None),
            }
            record["progress"] = ctx.progress
        _write_audit(plan, record, audit_log, audit_table, result)


def _write_audit(plan: Plan, record: dict[str, Any], audit_log: str | None, audit_table: bool, result: ActionResult | None) -> None:
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


# ---------------------------------------------------------------------------------------------
# Formatting helpers


def _duration(seconds: float) -> str:
    if seconds < 1:
        return "< 1 s"
    if seconds < 120:
        return f"~{seconds:.0f} s"
    if seconds < 7200:
        return f"~{seconds / 60:.0f} min"
    return f"~{seconds / 3600:.1f} h"


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat(sep=" ") if isinstance(value, dt.datetime) else value.isoformat()
    if isinstance(value, (list, dict)):
        return json.dumps(value, default=str)
    text = str(value).replace("\n", " ")
    return text if len(text) <= 80 else text[:77] + "..."


def _text_table(rows: list[dict[str, Any]], limit: int = 50) -> str:
    cols = list(dict.fromkeys(k for r in rows for k in r))
    cells = [[_cell(r.get(c)) for c in cols] for r in rows[:limit]]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(cols)]
    out = ["  ".join(c.ljust(w) for c, w in zip(cols, widths)), "  ".join("-" * w for w in widths)]
    out += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    if len(rows) > limit:
        out.append(f"... and {len(rows) - limit} more")
    return "\n".join(out)


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("<", "&lt;")


def _markdown_table(rows: list[dict[str, Any]], limit: int = 50) -> str:
    cols = list(dict.fromkeys(k for r in rows for k in r))
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows[:limit]:
        out.append("| " + " | ".join(_md_escape(_cell(r.get(c))) for c in cols) + " |")
    if len(rows) > limit:
        out.append(f"\n… and {len(rows) - limit} more")
    return "\n".join(out)

