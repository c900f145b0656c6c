"""The exception hierarchy: every error says what went wrong and what to do next.

This is the package's one exceptions module. Each class carries the process exit code the
CLI uses for it, so a scheduler can tell "the database has problems" (1) from "the runbook
broke" (2) from "you called it wrong" (3), and a default ``hint`` (the next step) that a
raise may replace with a more precise one.
"""

from __future__ import annotations

from typing import Iterable


class PgRunbooksError(Exception):
    """Base class. ``hint`` tells the user the next step (the class's ``default_hint`` unless given)."""

    exit_code = 2
    default_hint: str | None = None

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint if hint is not None else self.default_hint

    def __str__(self) -> str:
        from pgrunbooks.redact import redact

        text = self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"
        return redact(text)


class UsageError(PgRunbooksError):
    """Bad input: unknown runbook, target, parameter or option. Nothing was changed."""

    exit_code = 3
    default_hint = "check the name or value against `pgrunbooks --help` and the runbook's parameters cell"


class ParameterError(UsageError):
    """A runbook parameter is unknown, mistyped or missing."""

    default_hint = "see the runbook's parameters cell: each parameter's comment says what it takes"


class TargetError(UsageError):
    """A target name cannot be resolved (unknown service, unset variable, password in a parameter)."""

    default_hint = "use local, local:DB, env:VAR or service:NAME; passwords belong in ~/.pgpass, never in a target"


class UnknownFault(UsageError, ValueError):
    """A planted-fault name the catalogue does not have (``pgrunbooks.seed.FAULTS``); a ``ValueError`` too."""

    def __init__(self, names: Iterable[str], valid: Iterable[str]):
        self.names = tuple(names)
        self.valid = tuple(valid)
        shown = ", ".join(repr(n) for n in self.names)
        super().__init__(
            f"unknown fault{'s' if len(self.names) > 1 else ''} {shown}",
            hint=f"valid faults: {', '.join(self.valid)} (or 'all' / 'none'); see docs/faults.md",
        )


class ConnectError(PgRunbooksError):
    """The database could not be reached within the connect timeout, or refused the login."""

    default_hint = "check that the server is up and the target's host, port, role and ~/.pgpass entry"


class SandboxError(PgRunbooksError):
    """The local sandbox server could not be started, stopped or inspected."""

    default_hint = "see `pgrunbooks sandbox status`; `pgrunbooks sandbox reset` starts from scratch"


class PortInUseError(SandboxError):
    """The requested loopback port is already taken by another process."""

    exit_code = 3
    default_hint = "pick another port with --port, or --port auto"


class RunbookFailed(PgRunbooksError):
    """A runbook's notebook raised; its executed notebook and report are still written."""

    default_hint = "open the executed notebook or its HTML report: the failing cell is marked"


# ---------------------------------------------------------------------------------------------
# Actions (pgrunbooks.actions): every message says what was and was not changed.


class ActionError(PgRunbooksError):
    """A mutating action refused to run or failed; it changed nothing it did not verify."""

    default_hint = "read the message, fix the cause, re-plan and re-run"


class ConfirmationError(ActionError):
    """``apply`` was called without the confirmation the plan asks for."""

    exit_code = 3
    default_hint = "review the plan, then pass the confirm value it names"


class PreconditionError(ActionError):
    """The database no longer matches the plan; re-plan before applying."""

    default_hint = "make a new plan"


class LockTimeoutError(ActionError):
    """Another session holds a lock the action needs; ``lock_timeout`` expired."""

    default_hint = "let the blocking session finish or end it (runbooks/incidents/terminate_sessions), then re-run"


class PrivilegeError(ActionError):
    """The connected role lacks a privilege the action needs."""

    default_hint = "connect as the objects' owner (postgres on Supabase) or grant the missing privilege"


class StatementTimeoutError(ActionError):
    """A statement ran past ``statement_timeout`` (or an operator cancelled it); it was rolled back."""

    default_hint = "re-run with a smaller batch or a larger statement_timeout, preferably off-peak"


class VerificationError(ActionError):
    """A post-condition did not hold; the transaction that would have broken it was rolled back."""

    default_hint = "investigate before re-running: the audit record says what was committed"


class ConcurrentChangeError(ActionError):
    """A deadlock or serialization failure with another session; the transaction was rolled back."""

    default_hint = "re-run: the action re-plans from the current state"


class CascadeDetected(ConcurrentChangeError):
    """An archive batch reached a dependent row committed after its snapshot; the batch was rolled back.

    The archive retries such a batch itself (a few times) before giving up with a
    :class:`VerificationError`.
    """

    default_hint = "re-run when the application is quieter"


class ConnectionLostError(ActionError):
    """The connection to the server broke mid-action; committed steps stay, the rest rolled back."""

    default_hint = "check the server, then re-run the action: it continues from where it stopped"


class CheckFailedError(ActionError):
    """A diagnostic an action plans from ended in an error: the plan would be incomplete, so there is none."""

    default_hint = "run `pgrunbooks check --category maintenance,indexes` to see the check's error, fix it, then re-plan"


class SkippedByServerError(ActionError):
    """The server skipped a maintenance statement (it answered with a warning and did not do the work)."""

    default_hint = "run as the table's owner (or with MAINTAIN on PostgreSQL 17+), then re-plan"


def exit_code_of(ename: str) -> int | None:
    """The exit code of the error class named ``ename`` (as a notebook's failing cell names it),
    or ``None`` when it is not one of ours: a runbook cell that raised a :class:`UsageError`
    (a name that matches nothing, found at plan time) exits 3 like the same error raised here."""
    cls = globals().get(ename)
    if isinstance(cls, type) and issubclass(cls, PgRunbooksError):
        return cls.exit_code
    return None
