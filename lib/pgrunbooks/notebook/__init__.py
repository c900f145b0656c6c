"""The in-notebook API: what a runbook imports in its first cell.

```python
from pgrunbooks import notebook as rb
s = rb.start("daily/health_overview", target)     # connect, configure %sql and plotly, show a header
rb.record(findings)                                # THE call that reports findings to the runner
rb.show(fig_or_df)                                 # charts and tables, displayed consistently
```

``record`` publishes findings as a display output with the MIME type
``application/vnd.pgrunbooks.findings+json``; the runner collects every such output of the
executed notebook. It may be called several times.

Plotly charts are published with the ``plotly_mimetype`` renderer only: JupyterLab and VS Code
render them natively, committed notebooks stay small (no plotly.js inside), and the HTML
report embeds plotly.js once. pandas, plotly, SQLAlchemy and JupySQL are imported lazily:
this module is imported by every runbook and must stay cheap.
"""

from __future__ import annotations

import html
import os
import sys
from dataclasses import dataclass, field
from typing import Any, Iterable

from pgrunbooks import db
from pgrunbooks.errors import PgRunbooksError
from pgrunbooks.findings import Finding, severity_counts, suppress as _suppress, worst
from pgrunbooks.redact import redact
from pgrunbooks.report import (
    FINDINGS_MIME,
    PLOTLY_MIME,
    banner_html,
    counts_text,
    findings_table_html,
    redact_tree,
    summary_text,
)

__all__ = [
    "FINDINGS_MIME",
    "PLOTLY_MIME",
    "Session",
    "banner",
    "current",
    "detected",
    "record",
    "show",
    "show_findings",
    "start",
]

PLOTLY_RENDERER = "plotly_mimetype"
SQL_DISPLAY_LIMIT = 50
DEFAULT_CONNECT_TIMEOUT_S = db.DEFAULT_CONNECT_TIMEOUT_S

_current: "Session | None" = None


# --------------------------------------------------------------------------------------
# Session
# --------------------------------------------------------------------------------------
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
        return _configure_jupysql(self, alias=alias)

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
    _install_error_display()
    _configure_plotly()
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
    import dataclasses

    session = Session(
        **{f.name: getattr(base, f.name) for f in dataclasses.fields(base) if f.init}, connect_timeout=timeout
    )
    _current = session
    if sql_magic:
        _install_sql_magic(session)
    _show_header(session)
    return session


def current() -> Session:
    """The session opened by the last :func:`start` (error if none)."""
    if _current is None:
        from pgrunbooks.errors import UsageError

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
    _publish({"text/html": markup, "text/plain": redact(text)})


# --------------------------------------------------------------------------------------
# Findings
# --------------------------------------------------------------------------------------
def record(findings: Iterable[Finding], *, suppress: Iterable[str] | None = None) -> list[Finding]:
    """Report findings to the runner (and show them): THE one call a runbook uses.

    Publishes a display output carrying ``application/vnd.pgrunbooks.findings+json`` (the
    findings as ``Finding.to_dict()``), an HTML table and a text summary. May be called
    several times; the runner merges every call. Findings whose key (or check id) is in
    ``suppress`` — by default the notebook's ``suppress`` parameter when it has one — are
    dropped and counted. Returns the findings kept.
    """
    items = [f if isinstance(f, Finding) else Finding.from_dict(f) for f in findings]
    keys = list(suppress) if suppress is not None else _namespace_suppress()
    kept = _suppress(items, keys) if keys else items
    dropped = len(items) - len(kept)
    payload = redact_tree([f.to_dict() for f in kept])
    _publish(
        {
            FINDINGS_MIME: payload,
            "text/html": findings_table_html(kept, suppressed=dropped),
            "text/plain": summary_text(kept, suppressed=dropped),
        }
    )
    return _Recorded(kept)


class _Recorded(list):
    """The findings :func:`record` returns: a plain list that does not echo as cell output."""

    def _ipython_display_(self) -> None:
        pass


def banner(findings: Iterable[Finding]) -> None:
    """Display a severity banner: worst severity and counts per severity."""
    items = list(findings)
    _publish(
        {
            "text/html": banner_html(items),
            "text/plain": f"{worst(items)}: {counts_text(severity_counts(items))}",
        }
    )


def detected(findings: Iterable[Finding], *, level: str = "warning") -> None:
    """Print the severity counts and the key of every finding at or above ``level``.

    Keys name a check and an object, never a measurement, so on the deterministic
    seeded sandbox this output is the same every run: runbooks mark the cell
    ``# NBVAL_CHECK_OUTPUT`` and nbval proves each planted fault is still detected.
    """
    from pgrunbooks.findings import at_or_above

    items = list(findings)
    lines = [counts_text(severity_counts(items))]
    flagged = sorted(at_or_above(items, level), key=lambda f: (-f.severity.rank, f.key))
    lines += [f"  [{f.severity}] {f.key}" for f in flagged]
    print(redact("\n".join(lines)))


def show_findings(findings: Iterable[Finding]) -> None:
    """Display findings as a styled table (does not report them: use :func:`record`)."""
    items = list(findings)
    _publish({"text/html": findings_table_html(items), "text/plain": summary_text(items)})


def _namespace_suppress() -> list[str]:
    shell = _ipython()
    value = shell.user_ns.get("suppress") if shell is not None else None
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple, set)):
        return [str(v) for v in value]
    return []


# --------------------------------------------------------------------------------------
# Charts and tables
# --------------------------------------------------------------------------------------
def show(fig_or_df: Any, *, max_rows: int = 200) -> None:
    """Display a plotly figure (or a figure dict ``{"data": [...], "layout": {...}}``) or a
    pandas DataFrame (or anything else) consistently.

    Figures get a white template and a sane height and are published as plotly's MIME type
    (no plotly.js in the notebook). DataFrames are shown as an HTML table of at most
    ``max_rows`` rows (the total is stated when truncated), scrollable when wide.
    """
    if _is_plotly_figure(fig_or_df):
        _publish(figure_bundle(fig_or_df))
        return
    if isinstance(fig_or_df, dict) and isinstance(fig_or_df.get("data"), list):  # a figure as a plain dict
        fig = dict(fig_or_df)
        fig.setdefault("layout", {}).setdefault("template", {"layout": {"plot_bgcolor": "white"}})
        fig.setdefault("config", {}).update({"displaylogo": False, "responsive": True})
        _publish({PLOTLY_MIME: redact_tree(fig), "text/plain": "<chart>"})
        return
    if _is_dataframe(fig_or_df):
        _publish(dataframe_bundle(fig_or_df, max_rows=max_rows))
        return
    shell = _ipython()
    if shell is not None:
        from IPython.display import display

        display(fig_or_df)
    else:
        print(redact(str(fig_or_df)))


def figure_bundle(fig: Any) -> dict[str, Any]:
    """A plotly figure as a MIME bundle (``application/vnd.plotly.v1+json`` + text)."""
    import json

    import plotly.io as pio

    layout = fig.layout
    if pio.templates.default == "plotly" and layout.template == pio.templates["plotly"]:
        fig.update_layout(template="plotly_white")  # the default look, unless the author chose one
    if layout.height is None:
        fig.update_layout(height=380)
    if layout.margin.t is None:
        fig.update_layout(margin=dict(l=40, r=20, t=50, b=40))
    fig_dict = json.loads(pio.to_json(fig, validate=False, remove_uids=True))
    fig_dict.setdefault("config", {}).update({"displaylogo": False, "responsive": True})
    title = ""
    try:
        title = fig.layout.title.text or ""
    except AttributeError:
        pass
    return {PLOTLY_MIME: fig_dict, "text/plain": f"<chart{': ' + title if title else ''}>"}


def dataframe_bundle(df: Any, *, max_rows: int = 200) -> dict[str, Any]:
    """A DataFrame as an HTML table (+ text), truncated to ``max_rows``."""
    total = len(df)
    shown = df.head(max_rows)
    table = shown.to_html(index=False, border=0, classes="pgrb-df", na_rep="", max_cols=60)
    note = f'<p style="color:#6b7280;margin:2px 0">showing {max_rows} of {total} rows</p>' if total > max_rows else ""
    markup = f'<div class="pgrb-dfwrap" style="overflow-x:auto;max-width:100%;max-height:640px">{table}</div>{note}'
    return {"text/html": redact(markup), "text/plain": redact(shown.to_string(max_rows=40, max_cols=20))}


def _is_plotly_figure(obj: Any) -> bool:
    return "plotly" in sys.modules and type(obj).__module__.startswith("plotly") and hasattr(obj, "to_plotly_json")


def _is_dataframe(obj: Any) -> bool:
    return "pandas" in sys.modules and hasattr(obj, "to_html") and hasattr(obj, "head") and hasattr(obj, "columns")


# --------------------------------------------------------------------------------------
# Environment: IPython, plotly, JupySQL
# --------------------------------------------------------------------------------------
def _ipython():
    if "IPython" not in sys.modules:
        return None
    from IPython import get_ipython

    return get_ipython()


def _publish(bundle: dict[str, Any]) -> None:
    """Display a MIME bundle in IPython; outside IPython print its text part."""
    if _ipython() is not None:
        from IPython.display import display

        display(bundle, raw=True)
    else:
        print(bundle.get("text/plain", ""))


def _configure_plotly() -> None:
    """Use the plotly MIME renderer (set before plotly is imported when possible: it is slow)."""
    os.environ.setdefault("PLOTLY_RENDERER", PLOTLY_RENDERER)
    if "plotly.io" in sys.modules:
        import plotly.io as pio

        pio.renderers.default = PLOTLY_RENDERER


def _install_error_display() -> None:
    """Show pgrunbooks errors (connection refused, bad target…) as one message, not a traceback wall."""
    shell = _ipython()
    if shell is None or getattr(shell, "_pgrb_errors_installed", False):
        return

    def handler(self, etype, value, tb, tb_offset=None):
        # IPython discards the return value in run_code: publish the short form ourselves
        # (ipykernel sends it as the cell's error output, so the run still fails).
        stb = [f"{etype.__name__}: {value}"]
        self._showtraceback(etype, value, stb)
        return stb

    shell.set_custom_exc((PgRunbooksError,), handler)
    shell._pgrb_errors_installed = True


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
        conn = psycopg.connect(conninfo)
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


_SQL_MAGICS = ("sql", "sqlcmd", "sqlplot")
_JUPYSQL_CLASS: list = []


def _jupysql_connection_class(base):
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


def _install_sql_magic(session: Session) -> None:
    """Register light ``%sql`` stand-ins that load and configure JupySQL on first use."""
    shell = _ipython()
    if shell is None:
        return
    if "sql.magic" in sys.modules and "SqlMagic" in shell.magics_manager.registry:
        _configure_jupysql(session)  # already loaded: just repoint it
        return

    def make_stub(name: str):
        def stub(line: str = "", cell: str | None = None):
            _configure_jupysql(current())
            if cell is None:
                return shell.run_line_magic(name, line)
            return shell.run_cell_magic(name, line, cell)

        stub.__name__ = name
        stub.__doc__ = f"pgrunbooks: loads JupySQL on first use, then runs %{name}."
        return stub

    for name in _SQL_MAGICS:
        shell.register_magic_function(make_stub(name), magic_kind="line_cell", magic_name=name)


def _configure_jupysql(session: Session, alias: str | None = None):
    """Load JupySQL, point ``%sql`` at ``session``'s engine, fail cells on SQL errors."""
    os.environ.setdefault("PLOOMBER_STATS_ENABLED", "false")  # no telemetry from a DBA's notebook
    os.environ.setdefault("PLOOMBER_VERSION_CHECK_DISABLED", "true")
    shell = _ipython()
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
    from types import SimpleNamespace

    from sql.connection import ConnectionManager, SQLAlchemyConnection

    name = alias or f"pgrunbooks/{session.runbook}"
    existing = ConnectionManager.connections.get(name)
    if existing is not None and getattr(existing, "_pgrb_session", None) is session:
        ConnectionManager.current = existing
        return existing
    # No AUTOCOMMIT isolation (it would bypass BEGIN READ ONLY and SET LOCAL): each
    # statement runs in its own transaction, committed by JupySQL right after it.
    conn = _jupysql_connection_class(SQLAlchemyConnection)(
        session.engine, alias=name, config=SimpleNamespace(autocommit=False)
    )
    conn._requires_manual_commit = True
    conn._pgrb_session = session
    ConnectionManager.current = conn
    return conn
