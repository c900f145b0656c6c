"""``%sql`` / ``%%sql`` on the runbook's session: JupySQL, loaded on first use.

Each statement runs in its own short transaction on the session's SQLAlchemy engine
(``BEGIN READ ONLY`` for diagnostics, ``SET LOCAL`` timeouts), so ``%sql`` works through a
transaction-mode pooler and never leaves a session idle in transaction; a failing statement
fails its cell (hence a headless run). JupySQL is slow to import: :func:`install` registers
light stand-ins that load it when a cell first uses ``%sql``.
"""

from __future__ import annotations

import os
import sys
from types import SimpleNamespace
from typing import TYPE_CHECKING, Callable

from pgrunbooks.errors import PgRunbooksError
from pgrunbooks.notebook.display import ipython

if TYPE_CHECKING:
    from pgrunbooks.notebook.session import Session

SQL_DISPLAY_LIMIT = 50
_SQL_MAGICS = ("sql", "sqlcmd", "sqlplot")
_JUPYSQL_CLASS: list = []


def install(session: "Session", current: Callable[[], "Session"]) -> None:
    """Point ``%sql`` at ``session``: repoint a loaded JupySQL, else register stand-ins that
    load it on first use and configure it for ``current()`` (the latest session)."""
    shell = ipython()
    if shell is None:
        return
    if "sql.magic" in sys.modules and "SqlMagic" in shell.magics_manager.registry:
        configure(session)  # already loaded: just repoint it
        return

    def make_stub(name: str):
        def stub(line: str = "", cell: str | None = None):
            configure(current())
            if cell is None:
                return shell.run_line_magic(name, line)
            return shell.run_cell_magic(name, line, cell)

        stub.__name__ = name
        stub.__doc__ = f"pgrunbooks: loads JupySQL on first use, then runs %{name}."
        return stub

    for name in _SQL_MAGICS:
        shell.register_magic_function(make_stub(name), magic_kind="line_cell", magic_name=name)


def configure(session: "Session", alias: str | None = None):
    """Load JupySQL, point ``%sql`` at ``session``'s engine, fail cells on SQL errors."""
    os.environ.setdefault("PLOOMBER_STATS_ENABLED", "false")  # no telemetry from a DBA's notebook
    os.environ.setdefault("PLOOMBER_VERSION_CHECK_DISABLED", "true")
    shell = ipython()
    if shell is None:
        raise PgRunbooksError("%sql needs IPython", hint="use session.fetch() or session.fetch_df() outside notebooks")
    if "SqlMagic" not in shell.magics_manager.registry:
        import sql.magic as jupysql_magic

        # Runbooks are configured here, not by whatever pyproject.toml or ~/.jupysql/config
        # is found from the notebook's folder (JupySQL would also print a notice about toml).
        load_configs = jupysql_magic.load_SqlMagic_configs
        jupysql_magic.load_SqlMagic_configs = lambda ip: None
        try:
            shell.extension_manager.load_extension("sql")
        finally:
            jupysql_magic.load_SqlMagic_configs = load_configs
    magic = shell.magics_manager.registry["SqlMagic"]
    magic.short_errors = False  # a failing %sql cell raises, so a headless run fails
    magic.displaylimit = SQL_DISPLAY_LIMIT
    magic.displaycon = False
    magic.feedback = 0
    magic.autocommit = True
    from sql.connection import ConnectionManager, SQLAlchemyConnection

    name = alias or f"pgrunbooks/{session.runbook}"
    existing = ConnectionManager.connections.get(name)
    if existing is not None and getattr(existing, "_pgrb_session", None) is session:
        ConnectionManager.current = existing
        return existing
    # No AUTOCOMMIT isolation (it would bypass BEGIN READ ONLY and SET LOCAL): each
    # statement runs in its own transaction, committed by JupySQL right after it.
    conn = _connection_class(SQLAlchemyConnection)(session.engine, alias=name, config=SimpleNamespace(autocommit=False))
    conn._requires_manual_commit = True
    conn._pgrb_session = session
    ConnectionManager.current = conn
    return conn


def _connection_class(base):
    """JupySQL's connection, rolling back a failed statement's transaction at once (so the
    next ``%sql`` does not hit "current transaction is aborted")."""
    if not _JUPYSQL_CLASS:

        class PgRunbooksConnection(base):
            def _connection_execute(self, query, parameters=None):
                try:
                    return super()._connection_execute(query, parameters)
                except Exception:
                    try:
                        self._connection.rollback()
                    except Exception:  # the original error matters, not this one
                        pass
                    raise

        _JUPYSQL_CLASS.append(PgRunbooksConnection)
    return _JUPYSQL_CLASS[0]
