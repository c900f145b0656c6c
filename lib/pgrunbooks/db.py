"""Database sessions with pgrunbooks' safety settings.

Every session sets ``application_name = 'pgrunbooks/<runbook>'`` and a connect timeout.
Timeouts and read-only mode are applied **per transaction** (``BEGIN READ ONLY`` and
``set_config(..., is_local => true)``, i.e. ``SET LOCAL``) so they hold through a
transaction-mode pooler, where session-level ``SET`` would leak to other clients.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Iterator

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row

from pgrunbooks.errors import ConnectError
from pgrunbooks.redact import redact
from pgrunbooks.targets import Target, resolve

DEFAULT_CONNECT_TIMEOUT_S = 10
DEFAULT_STATEMENT_TIMEOUT = "30s"
DEFAULT_LOCK_TIMEOUT = "5s"

Query = str | sql.Composable

#: trailing comment on every statement a :class:`Session` sends, so statement checks can leave
#: pgrunbooks' own work out of the ranking: pg_stat_statements records no application_name,
#: but keeps trailing comments in its query text (checks add ``/* pgrunbooks:check */`` too).
QUERY_MARKER = "/* pgrunbooks */"
#: what the statement checks exclude: both markers start with it.
QUERY_MARKER_PREFIX = "/* pgrunbooks"


def _marked(query: Any) -> Any:
    if isinstance(query, sql.Composable):
        return sql.Composed([query, sql.SQL("\n" + QUERY_MARKER)])
    if isinstance(query, bytes):
        return query + ("\n" + QUERY_MARKER).encode()
    return query + "\n" + QUERY_MARKER


class MarkedCursor(psycopg.Cursor):
    """A cursor that appends :data:`QUERY_MARKER` to each statement it executes."""

    def execute(self, query, params=None, **kwargs):
        return super().execute(_marked(query), params, **kwargs)

    def executemany(self, query, params_seq, **kwargs):
        return super().executemany(_marked(query), params_seq, **kwargs)


@dataclass
class Session:
    """A connection plus the rules every transaction on it follows.

    Use :meth:`transaction` for anything that runs statements; :meth:`fetch` is the
    one-query shortcut. ``read_only`` sessions cannot write even by mistake.
    """

    conn: psycopg.Connection
    target: Target
    runbook: str
    read_only: bool = True
    statement_timeout: str = DEFAULT_STATEMENT_TIMEOUT
    lock_timeout: str = DEFAULT_LOCK_TIMEOUT
    _closed: bool = field(default=False, repr=False)

    @contextlib.contextmanager
    def transaction(
        self, *, statement_timeout: str | None = None, lock_timeout: str | None = None
    ) -> Iterator[psycopg.Cursor]:
        """A transaction with ``SET LOCAL`` timeouts; commits on success, rolls back on error."""
        with self.conn.transaction(), self.conn.cursor(row_factory=dict_row) as cur:
            cur.execute(
                "select set_config('statement_timeout', %s, true), set_config('lock_timeout', %s, true)",
                (statement_timeout or self.statement_timeout, lock_timeout or self.lock_timeout),
            )
            yield cur

    def fetch(self, query: Query, params: Any = None, **timeouts: str) -> list[dict[str, Any]]:
        """Run one query in its own transaction and return its rows as dicts."""
        with self.transaction(**timeouts) as cur:
            cur.execute(query, params)
            return cur.fetchall() if cur.description else []

    def fetch_one(self, query: Query, params: Any = None) -> dict[str, Any] | None:
        rows = self.fetch(query, params)
        return rows[0] if rows else None

    def scalar(self, query: Query, params: Any = None) -> Any:
        row = self.fetch_one(query, params)
        return next(iter(row.values())) if row else None

    def fetch_df(self, query: Query, params: Any = None):
        """Rows as a pandas DataFrame (columns in query order)."""
        import pandas as pd

        with self.transaction() as cur:
            cur.execute(query, params)
            columns = [c.name for c in cur.description or []]
            return pd.DataFrame(cur.fetchall(), columns=columns)

    @cached_property
    def server_version(self) -> int:
        """``server_version_num``, e.g. 180001."""
        return self.conn.info.server_version

    @cached_property
    def backend_pid(self) -> int:
        """The server process serving this session (through a pooler libpq's pid is the pooler's cancel key)."""
        return self.scalar("select pg_catalog.pg_backend_pid()")

    def close(self) -> None:
        if not self._closed:
            self.conn.close()
            self._closed = True

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        mode = "read-only" if self.read_only else "read-write"
        return f"<Session {self.runbook} on {self.target} ({mode})>"


def connect(
    target: Target | str = "local",
    *,
    runbook: str = "adhoc",
    read_only: bool = True,
    connect_timeout: int = DEFAULT_CONNECT_TIMEOUT_S,
    statement_timeout: str = DEFAULT_STATEMENT_TIMEOUT,
    lock_timeout: str = DEFAULT_LOCK_TIMEOUT,
    autocommit: bool = False,
) -> Session:
    """Open a :class:`Session` on ``target``.

    Diagnostics keep ``read_only=True`` (every transaction is ``BEGIN READ ONLY``);
    actions pass ``read_only=False``. An unreachable server fails within
    ``connect_timeout`` seconds with a :class:`ConnectError` naming the target.
    """
    if isinstance(target, str):
        target = resolve(target)
    conninfo = target.with_options(
        application_name=f"pgrunbooks/{runbook}"[:63], connect_timeout=max(1, int(connect_timeout))
    )
    started = time.monotonic()
    try:
        # prepare_threshold=None: a transaction-mode pooler (pgbouncer, Supavisor) hands each transaction
        # to any server connection and does not track server-side prepared statements (42P05 otherwise).
        conn = psycopg.connect(conninfo, autocommit=autocommit, cursor_factory=MarkedCursor, prepare_threshold=None)
    except psycopg.OperationalError as exc:
        elapsed = time.monotonic() - started
        reason = redact(connect_failure_reason(exc, conninfo))
        raise ConnectError(
            f"cannot connect to target {target} after {elapsed:.1f}s: {reason}",
            hint="check that the server is up and reachable, and the role, database and password source (.pgpass, service, env)",
        ) from None
    conn.read_only = read_only
    return Session(conn, target, runbook, read_only, statement_timeout, lock_timeout)


def connect_failure_reason(exc: psycopg.OperationalError, conninfo: str) -> str:
    """libpq's reason with every host and port it tried, on one line.

    libpq reports one line per address tried (``connection to server at "h", port p failed:
    Connection refused``) followed by tab-indented advice ("Is the server running…"); the
    advice is dropped (our hint says it), the reasons are kept. psycopg's own connect timeout
    names no address, so the host and port from ``conninfo`` are added. Callers still redact.
    """
    lines = [line.strip() for line in str(exc).splitlines() if line.strip() and not line.startswith("\t")]
    text = "; ".join(lines) or type(exc).__name__
    text = text.removeprefix("connection failed: ").removeprefix("connection is bad: ")
    if "connection to server" not in text:
        params = conninfo_to_dict(conninfo)
        host = params.get("host") or params.get("hostaddr") or "the default socket"
        text = f'connection to server at "{host}", port {params.get("port") or 5432} failed: {text.removeprefix("connection ")}'
    return text
