"""The exception hierarchy: every error says what went wrong and what to do next.

Each class carries the process exit code the CLI uses for it, so a scheduler can tell
"the database has problems" (1) from "the runbook broke" (2) from "you called it wrong" (3).
"""

from __future__ import annotations


class PgRunbooksError(Exception):
    """Base class. ``hint`` tells the user the next step."""

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        from pgrunbooks.redact import redact

        text = self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"
        return redact(text)


class UsageError(PgRunbooksError):
    """Bad input: unknown runbook, target, parameter or option. Nothing was changed."""

    exit_code = 3


class ParameterError(UsageError):
    """A runbook parameter is unknown, mistyped or missing."""


class TargetError(UsageError):
    """A target name cannot be resolved (unknown service, unset variable, password in a parameter)."""


class ConnectError(PgRunbooksError):
    """The database could not be reached within the connect timeout, or refused the login."""


class SandboxError(PgRunbooksError):
    """The local sandbox server could not be started, stopped or inspected."""


class PortInUseError(SandboxError):
    """The requested loopback port is already taken by another process."""

    exit_code = 3


class RunbookFailed(PgRunbooksError):
    """A runbook's notebook raised; its executed notebook and report are still written."""


class ActionError(PgRunbooksError):
    """A mutating action refused to run or failed; it changed nothing it did not verify."""


class ConfirmationError(ActionError):
    """``apply`` was called without the confirmation the plan asks for."""

    exit_code = 3


class PreconditionError(ActionError):
    """The database no longer matches the plan; re-plan before applying."""


class LockTimeoutError(ActionError):
    """Another session holds a lock the action needs; ``lock_timeout`` expired."""


class PrivilegeError(ActionError):
    """The connected role lacks a privilege the action needs."""
