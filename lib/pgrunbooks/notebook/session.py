"""The runbook's session: :func:`start` connects, prepares the notebook and shows a header.

A :class:`Session` is a :class:`pgrunbooks.db.Session` plus a SQLAlchemy engine on the same
target with the same rules (for pandas and ``%sql``). SQLAlchemy, psycopg's conninfo parser
and JupySQL are imported when first needed: every runbook imports this module.
"""

from __future__ import annotations

import dataclasses
import html
import os
from dataclasses import dataclass, field
from typing import Any

from pgrunbooks import db
from pgrunbooks.errors import UsageError
from pgrunbooks.notebook import sqlmagic
from pgrunbooks.notebook.display import configure_plotly, install_error_display, publish
from pgrunbooks.redact import redact

DEFAULT_CONNECT_TIMEOUT_S = db.DEFAULT_CONNECT_TIMEOUT_S

_current: "Session | None" = None


@dataclass(repr=False)
class Session(db.Session):
    """A :class:`pgrunbooks.db.Session` plus what notebooks need: a SQLAlchemy engine for
    pandas/JupySQL (same target, same rules) and the header shown by :func:`start`."""

    connect_timeout: int = DEFAULT_CONNECT_TIMEOUT_S
    _engine: Any = field(default=None, repr=False)

    @property
    def engine(self):
        """A SQLAlchemy engine on the same target with the same safety rules.

        Every transaction it runs is ``BEGIN READ ONLY`` for read-only sessions and starts
        with ``SET LOCAL`` statement/lock timeouts (so it also holds through a
        transaction-mode pooler). ``pd.read_sql(query, s.engine)`` works.
        """
        if self._engine is None:
            self._engine = _make_engine(self)
        return self._engine

    def sql_connection(self, alias: str | None = None):
        """Make this session's engine JupySQL's current ``%sql`` connection and return it."""
        return sqlmagic.configure(self, alias=alias)

    def info(self) -> dict[str, Any]:
        """Runbook, redacted target, server version, role, database and mode."""
        row = self.fetch_one("select current_user as role, current_database() as database") or {}
        return {
            "runbook": self.runbook,
            "target": str(self.target),
            "server_version": self.conn.info.parameter_status("server_version") or str(self.server_version),
            "role": row.get("role"),
            "database": row.get("database"),
            "mode": "read-only" if self.read_only else "read-write",
        }

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
        super().close()


def start(
    runbook: str,
    target: str = "local",
    *,
    mutating: bool = False,
    statement_timeout: str = "30s",
    lock_timeout: str = "5s",
    sql_magic: bool = True,
    connect_timeout: int | None = None,
) -> Session:
    """Connect a runbook to ``target`` and prepare the notebook.

    * resolves and connects (read-only unless ``mutating``), ``application_name`` =
      ``pgrunbooks/<runbook>``; ``connect_timeout`` defaults to the target's own
      ``connect_timeout``, else ``$PGCONNECT_TIMEOUT``, else 10 s;
    * makes plotly publish charts as ``application/vnd.plotly.v1+json`` (small notebooks,
      native JupyterLab rendering, plotly.js embedded once in the HTML report);
    * when ``sql_magic`` and IPython is running, makes ``%sql`` / ``%%sql`` use the same
      target and rules (JupySQL is loaded on the first ``%sql`` use, not here);
    * displays a one-line header: runbook, target (redacted), server version, role, mode.
    """
    global _current
    install_error_display()
    configure_plotly()
    if _current is not None:
        _current.close()
        _current = None
    from pgrunbooks.targets import resolve

    resolved = resolve(target)
    timeout = _connect_timeout(resolved, connect_timeout)
    base = db.connect(
        resolved,
        runbook=runbook,
        read_only=not mutating,
        connect_timeout=timeout,
        statement_timeout=statement_timeout,
        lock_timeout=lock_timeout,
    )
    session = Session(
        **{f.name: getattr(base, f.name) for f in dataclasses.fields(base) if f.init}, connect_timeout=timeout
    )
    _current = session
    if sql_magic:
        sqlmagic.install(session, current)
    _show_header(session)
    return session


def current() -> Session:
    """The session opened by the last :func:`start` (error if none)."""
    if _current is None:
        raise UsageError("no runbook session", hint="call pgrunbooks.notebook.start(runbook, target) first")
    return _current


def _connect_timeout(target, explicit: int | None) -> int:
    if explicit is not None:
        return int(explicit)
    from psycopg.conninfo import conninfo_to_dict

    for value in (conninfo_to_dict(target.conninfo).get("connect_timeout"), os.environ.get("PGCONNECT_TIMEOUT")):
        try:
            if value is not None and int(value) > 0:
                return int(value)
        except (TypeError, ValueError):
            pass
    return DEFAULT_CONNECT_TIMEOUT_S


def _show_header(session: Session) -> None:
    info = session.info()
    text = (
        f"pgrunbooks · {info['runbook']} · target {info['target']} · PostgreSQL {info['server_version']}"
        f" · role {info['role']} · db {info['database']} · {info['mode']}"
    )
    color = "#15803d" if session.read_only else "#b45309"
    markup = (
        '<div class="pgrb-header" style="font-family:system-ui,sans-serif;font-size:0.9em;padding:4px 8px;'
        f'border-left:4px solid {color};background:#f9fafb">'
        + " · ".join(
            f"{html.escape(k)} <b>{html.escape(redact(str(v)))}</b>"
            for k, v in (
                ("runbook", info["runbook"]),
                ("target", info["target"]),
                ("PostgreSQL", info["server_version"]),
                ("role", info["role"]),
                ("db", info["database"]),
            )
        )
        + f' · <b style="color:{color}">{info["mode"]}</b></div>'
    )
    publish({"text/html": markup, "text/plain": redact(text)})


def _make_engine(session: Session):
    """A SQLAlchemy engine whose every transaction follows the session's rules."""
    import psycopg
    from sqlalchemy import create_engine, event
    from sqlalchemy.pool import NullPool

    conninfo = session.target.with_options(
        application_name=f"pgrunbooks/{session.runbook}"[:63], connect_timeout=session.connect_timeout
    )
    read_only = session.read_only
    timeouts = (session.statement_timeout, session.lock_timeout)

    def creator():
        conn = psycopg.connect(conninfo, prepare_threshold=None)  # see pgrunbooks.db.connect: poolers
        conn.read_only = read_only  # psycopg then opens every transaction with BEGIN READ ONLY
        return conn

    engine = create_engine("postgresql+psycopg://", creator=creator, poolclass=NullPool)

    @event.listens_for(engine, "begin")
    def _set_local_timeouts(connection):  # noqa: ANN001 - SQLAlchemy event signature
        # The first statement of the (implicit) DBAPI transaction: SET LOCAL timeouts.
        connection.connection.driver_connection.execute(
            "select set_config('statement_timeout', %s, true), set_config('lock_timeout', %s, true)", timeouts
        )

    return engine
