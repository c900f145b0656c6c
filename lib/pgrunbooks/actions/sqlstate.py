"""Driver errors become pgrunbooks errors by SQLSTATE class, never by their message text.

Each translation says what was and was not changed (the transaction in flight was rolled
back by the time the error surfaces: ``Session.transaction`` exits first) and what to do next.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

import psycopg
import psycopg.errors as pgerr

from pgrunbooks.errors import (
    ActionError,
    ConcurrentChangeError,
    ConnectionLostError,
    LockTimeoutError,
    PgRunbooksError,
    PrivilegeError,
    StatementTimeoutError,
)
from pgrunbooks.redact import redact


def pg_message(exc: psycopg.Error) -> str:
    """The server's primary message (redacted), else the first line of the driver's."""
    diag = getattr(exc, "diag", None)
    if diag is not None and diag.message_primary:
        return redact(diag.message_primary)
    lines = str(exc).strip().splitlines()
    return redact(lines[0] if lines else type(exc).__name__)


def committed_note(progress: dict[str, Any]) -> str:
    """What an interrupted action keeps: the steps it committed, or nothing."""
    done = progress.get("committed")
    if done:
        return f" Work committed before this step is kept and consistent ({done}); re-run to continue."
    return " Nothing was changed."


@contextlib.contextmanager
def translate_errors(what: str, parameters: dict[str, Any] | None = None, progress: dict[str, Any] | None = None) -> Iterator[None]:
    """Turn driver errors raised inside the block into typed pgrunbooks errors (see module doc)."""
    parameters = parameters or {}
    progress = progress if progress is not None else {}
    lock_timeout = parameters.get("lock_timeout", "the lock_timeout")
    statement_timeout = parameters.get("statement_timeout", "the statement_timeout")
    rolled_back = f"The statement was rolled back.{committed_note(progress)}"
    try:
        yield
    except PgRunbooksError:
        raise
    except pgerr.LockNotAvailable as exc:
        raise LockTimeoutError(
            f"{what}: could not get a lock within lock_timeout={lock_timeout} ({pg_message(exc)}); "
            f"another session holds a conflicting lock. {rolled_back}",
            hint="find the blocker (select pid, pg_blocking_pids(pid), query from pg_stat_activity where "
            "wait_event_type = 'Lock'), let it finish or end it with runbooks/incidents/terminate_sessions, "
            "then re-run; raise lock_timeout only off-peak",
        ) from exc
    except pgerr.QueryCanceled as exc:
        raise StatementTimeoutError(
            f"{what}: statement cancelled ({pg_message(exc)}): statement_timeout={statement_timeout} expired "
            f"or an operator cancelled it. {rolled_back}"
        ) from exc
    except pgerr.InsufficientPrivilege as exc:
        raise PrivilegeError(
            f"{what}: permission denied ({pg_message(exc)}). {rolled_back}",
            hint="connect as the tables' owner (postgres on Supabase) or grant the missing privilege, then re-run",
        ) from exc
    except (pgerr.DeadlockDetected, pgerr.SerializationFailure) as exc:
        raise ConcurrentChangeError(
            f"{what}: conflict with a concurrent transaction ({pg_message(exc)}). {rolled_back}"
        ) from exc
    except pgerr.ReadOnlySqlTransaction as exc:
        raise PrivilegeError(
            f"{what}: the session is read-only ({pg_message(exc)}). {rolled_back}",
            hint="start the runbook with mutating=True (pgrunbooks.notebook.start(..., mutating=True)) "
            "and make sure the target is the primary, not a replica",
        ) from exc
    except psycopg.OperationalError as exc:
        raise ConnectionLostError(
            f"{what}: the connection failed ({pg_message(exc)}). The transaction in flight was rolled back "
            f"by the server.{committed_note(progress)}"
        ) from exc
    except psycopg.Error as exc:
        sqlstate = getattr(exc, "sqlstate", None) or "?"
        raise ActionError(f"{what}: the database refused ({sqlstate}: {pg_message(exc)}). {rolled_back}") from exc
