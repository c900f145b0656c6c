"""The audit trail of mutating actions: one JSON object per line, appended and fsync'd.

Every :func:`pgrunbooks.actions.apply` writes exactly one final record, whatever the outcome
(``applied``, ``refused``, ``failed``), and a plan made to be applied that fails while being made
writes a ``refused`` one (:func:`pgrunbooks.actions.auditing.refusals_recorded`): who ran it (the OS user, or ``operator=``), when
(UTC), against which target (redacted: a target never carries a password), from which
runbook, with which parameters (secret-looking keys dropped, values redacted), the plan's
summary, what was verified and how long each step took.

Where the log lives: ``$PGRUNBOOKS_AUDIT_LOG`` when set, else ``audit/audit.jsonl`` in
the project directory (:func:`pgrunbooks.paths.project_root`), else ``./audit/audit.jsonl``.

Appends are atomic per line for concurrent writers: the file is opened with
``O_APPEND``, locked with ``flock`` while one line is written, then ``fsync``'d, so a
record that :func:`append` returned from survives a crash of the machine.

Optionally (``to_table=True``) the same record also goes into ``pgrunbooks.audit_log`` in
the target database, created on demand; failing to write there (no privilege) never
hides the outcome: the JSON Lines record notes it.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import getpass
import json
import os
import re
import uuid
from pathlib import Path
from typing import Any, Iterable

from pgrunbooks.paths import audit_dir
from pgrunbooks.redact import MASK, redact

ENV_LOG = "PGRUNBOOKS_AUDIT_LOG"
ENV_OPERATOR = "PGRUNBOOKS_OPERATOR"
AUDIT_SCHEMA = "pgrunbooks"
AUDIT_TABLE = "audit_log"

# Parameter names whose values never reach the audit trail, whatever they hold.
_SECRET_KEY = re.compile(r"pass(word)?|secret|token|dsn|conninfo|credential|api[_-]?key|private", re.IGNORECASE)


def default_path() -> Path:
    """``$PGRUNBOOKS_AUDIT_LOG``, else ``<project>/audit/audit.jsonl``."""
    env = os.environ.get(ENV_LOG)
    if env:
        return Path(env).expanduser()
    return audit_dir() / "audit.jsonl"


def operator_name(operator: str | None = None) -> str:
    """Who is acting: the ``operator`` argument, ``$PGRUNBOOKS_OPERATOR``, else the OS user."""
    if operator and str(operator).strip():
        return str(operator).strip()
    env = os.environ.get(ENV_OPERATOR)
    if env and env.strip():
        return env.strip()
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry for the uid (some containers)
        return f"uid:{os.getuid()}"


def utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


def scrub(value: Any, *, _key: str | None = None) -> Any:
    """A JSON-able copy of ``value`` with secret-looking keys masked and every string redacted."""
    if _key is not None and _SECRET_KEY.search(_key):
        return MASK
    if isinstance(value, dict):
        return {str(k): scrub(v, _key=str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else value
        return [scrub(v) for v in items]
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    return redact(str(value))


def new_record(**fields: Any) -> dict[str, Any]:
    """A record with an id and a UTC timestamp; ``fields`` are scrubbed."""
    record: dict[str, Any] = {"id": uuid.uuid4().hex, "time": utc_now()}
    record.update(scrub(fields))
    return record


def append(record: dict[str, Any], path: Path | str | None = None) -> Path:
    """Append one record as a JSON line, locked and fsync'd. Returns the log's path."""
    path = Path(path).expanduser() if path else default_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(scrub(record), sort_keys=False, separators=(",", ":"), default=str) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        data = line.encode("utf-8")
        written = 0
        while written < len(data):
            written += os.write(fd, data[written:])
        os.fsync(fd)
    finally:
        os.close(fd)  # closing releases the lock
    return path


def read(path: Path | str | None = None) -> list[dict[str, Any]]:
    """Every record of the log, oldest first (a torn last line is skipped)."""
    path = Path(path).expanduser() if path else default_path()
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def tail(n: int = 20, path: Path | str | None = None, *, action: str | None = None) -> list[dict[str, Any]]:
    """The last ``n`` records (optionally of one action), newest last."""
    records = [r for r in read(path) if action is None or r.get("action") == action]
    return records[-n:]


def write_table(conn, record: dict[str, Any]) -> None:
    """Insert ``record`` into ``pgrunbooks.audit_log`` in the target, creating it on demand.

    ``conn`` is a psycopg connection with no transaction open; the insert commits on its
    own, so the audit row survives whatever the action's transactions did. Raises the
    driver's error (privilege, read-only…) for the caller to note.
    """
    from psycopg import sql

    with conn.transaction():
        conn.execute("select set_config('lock_timeout', '2s', true), set_config('statement_timeout', '10s', true)")
        # IF NOT EXISTS still needs the CREATE privilege: only ask when the objects are missing.
        exists = conn.execute(
            "select to_regnamespace(%s) is not null, to_regclass(%s) is not null",
            (AUDIT_SCHEMA, f"{AUDIT_SCHEMA}.{AUDIT_TABLE}"),
        ).fetchone()
        if not exists[0]:
            conn.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(AUDIT_SCHEMA)))
        if not exists[1]:
            conn.execute(
                sql.SQL(
                    "create table if not exists {} ("
                    " id bigint generated always as identity primary key,"
                    " recorded_at timestamptz not null default now(),"
                    " action text not null,"
                    " outcome text not null,"
                    " operator text not null,"
                    " record jsonb not null)"
                ).format(sql.Identifier(AUDIT_SCHEMA, AUDIT_TABLE))
            )
        conn.execute(
            sql.SQL("insert into {} (action, outcome, operator, record) values (%s, %s, %s, %s::jsonb)").format(
                sql.Identifier(AUDIT_SCHEMA, AUDIT_TABLE)
            ),
            (
                record.get("action", ""),
                record.get("outcome", ""),
                record.get("operator", ""),
                json.dumps(scrub(record), default=str),
            ),
        )


def summarize(records: Iterable[dict[str, Any]]):
    """Records as a pandas DataFrame (time, operator, action, target, outcome, summary, duration)."""
    import pandas as pd

    rows = [
        {
            "time": r.get("time"),
            "operator": r.get("operator"),
            "action": r.get("action"),
            "target": r.get("target"),
            "outcome": r.get("outcome"),
            "summary": (r.get("result") or {}).get("summary") or (r.get("error") or {}).get("message"),
            "seconds": (r.get("timings") or {}).get("total_s"),
        }
        for r in records
    ]
    return pd.DataFrame(rows, columns=["time", "operator", "action", "target", "outcome", "summary", "seconds"])
