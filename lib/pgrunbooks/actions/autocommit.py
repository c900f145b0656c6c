"""Maintenance statements that cannot run in a transaction block: VACUUM, ANALYZE, REINDEX/DROP INDEX CONCURRENTLY.

``SET LOCAL`` is not an option for them, so each runs on a **dedicated autocommit
connection** (:func:`autocommit_session`) on which ``statement_timeout`` and
``lock_timeout`` are set at session level before the statement and reset after it
(:func:`bounded`), and which is closed at the end. That needs a session-mode connection
(direct, or Supavisor/PgBouncer in *session* mode, port 5432 on Supabase); through a
transaction-mode pooler (port 6543) the settings could land on another client's backend.

Progress comes from ``pg_stat_progress_vacuum`` / ``pg_stat_progress_analyze`` /
``pg_stat_progress_create_index``, polled from a second connection while the statement
runs (:class:`ProgressPoller`). The server's notices are kept typed (:class:`Notice`,
with their SQLSTATE) so callers decide by SQLSTATE class, never by message text.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Iterator

import psycopg
from psycopg import sql

SESSION_MODE_NOTE = (
    "runs on a dedicated autocommit connection with session-level statement_timeout/lock_timeout "
    "(VACUUM and REINDEX CONCURRENTLY cannot run in a transaction block): use a direct or "
    "session-mode connection, not a transaction-mode pooler"
)


@contextlib.contextmanager
def autocommit_session(session) -> Iterator[Any]:
    """A new read-write autocommit session on the same target (closed on exit)."""
    from pgrunbooks.db import connect

    s = connect(session.target, runbook=session.runbook, read_only=False, autocommit=True)
    try:
        yield s
    finally:
        s.close()


@contextlib.contextmanager
def bounded(s, *, statement_timeout: str, lock_timeout: str) -> Iterator[None]:
    """Session-level timeouts around one statement, reset afterwards (the connection is ours alone)."""
    s.conn.execute(
        "select set_config('statement_timeout', %s, false), set_config('lock_timeout', %s, false)",
        (statement_timeout, lock_timeout),
    )
    try:
        yield
    finally:
        # A reset that fails means the connection is gone; the error that broke it is the one to report.
        with contextlib.suppress(psycopg.Error):
            s.conn.execute("reset statement_timeout")
            s.conn.execute("reset lock_timeout")


PROGRESS_QUERIES = {
    "vacuum": (
        "select 'vacuum' as kind, phase, heap_blks_total as total, heap_blks_scanned as done,"
        " index_vacuum_count from pg_catalog.pg_stat_progress_vacuum where pid = %(pid)s"
        " union all select 'analyze', phase, sample_blks_total, sample_blks_scanned, null"
        " from pg_catalog.pg_stat_progress_analyze where pid = %(pid)s"
    ),
    "create_index": (
        "select 'create_index' as kind, phase,"
        " case when blocks_total > 0 then blocks_total else tuples_total end as total,"
        " case when blocks_total > 0 then blocks_done else tuples_done end as done,"
        " lockers_total, lockers_done from pg_catalog.pg_stat_progress_create_index where pid = %(pid)s"
    ),
}


class ProgressPoller:
    """Polls a progress view for ``pid`` from its own connection, feeding a tqdm bar.

    ``samples`` keeps every distinct (kind, phase) seen, for the result and the tests.
    """

    def __init__(self, session, pid: int, view: str, desc: str, *, interval: float = 0.25, bar: bool = True):
        self.session, self.pid, self.query, self.desc = session, pid, PROGRESS_QUERIES[view], desc
        self.interval, self.use_bar = interval, bar
        self.samples: list[dict[str, Any]] = []
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"pgrunbooks-progress-{pid}")

    def __enter__(self) -> "ProgressPoller":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        from pgrunbooks.db import connect

        bar = None
        try:
            with connect(self.session.target, runbook=self.session.runbook, read_only=True, statement_timeout="5s") as mon:
                while not self._stop.is_set():
                    for row in mon.fetch(self.query, {"pid": self.pid}):
                        bar = self._sample(row, bar)
                    self._stop.wait(self.interval)
        except Exception as exc:  # progress is a nicety: kept in .error, never fails the action
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            if bar is not None:
                bar.close()

    def _sample(self, row: dict[str, Any], bar):
        key = (row["kind"], row["phase"])
        if not self.samples or (self.samples[-1]["kind"], self.samples[-1]["phase"]) != key:
            self.samples.append({"kind": row["kind"], "phase": row["phase"], "at": time.monotonic()})
        if not self.use_bar:
            return bar
        if bar is None:
            from pgrunbooks.progress import progress_bar

            bar = progress_bar(total=row["total"] or None, desc=self.desc, unit="blk", mininterval=0.5)
        if row["total"] and bar.total != row["total"]:
            bar.total = row["total"]
        bar.n = row["done"] or 0
        bar.set_postfix_str(f"{row['kind']}: {row['phase']}", refresh=True)
        return bar

    @property
    def phases(self) -> list[str]:
        return [f"{s['kind']}: {s['phase']}" for s in self.samples]


@dataclass(frozen=True)
class Notice:
    """A message the server sent while a statement ran (INFO, NOTICE, WARNING…)."""

    severity: str  # not localized: INFO, NOTICE, WARNING, ...
    sqlstate: str
    message: str

    @property
    def is_warning(self) -> bool:
        """SQLSTATE class 01 (warning): the server did not do all it was asked (``skipping …``) or warns."""
        return self.sqlstate.startswith("01")

    def __str__(self) -> str:
        return f"{self.severity}: {self.message}"


@dataclass
class Watched:
    """What :func:`run_watched` saw: the statement's duration, the progress phases, the notices."""

    seconds: float
    phases: list[str] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)

    @property
    def warnings(self) -> list[Notice]:
        return [n for n in self.notices if n.is_warning]


def run_watched(s, statement: sql.Composable, view: str, desc: str, ctx, timeouts: dict[str, str]) -> Watched:
    """Run one maintenance statement on autocommit session ``s``, bounded, with a progress poller."""
    notices: list[Notice] = []

    def on_notice(diag: psycopg.errors.Diagnostic) -> None:
        notices.append(Notice(diag.severity_nonlocalized or diag.severity or "", diag.sqlstate or "", diag.message_primary or ""))

    s.conn.add_notice_handler(on_notice)
    started = time.monotonic()
    poller = ProgressPoller(s, s.backend_pid, view, desc, bar=ctx.progress_bar)
    try:
        with poller:
            with bounded(s, **timeouts):
                s.conn.execute(statement)
    finally:
        s.conn.remove_notice_handler(on_notice)
        # Kept for the audit record: where a failed statement was when it stopped.
        ctx.progress["last_phases"] = {"statement": statement.as_string(s.conn), "phases": poller.phases}
    return Watched(round(time.monotonic() - started, 3), poller.phases, notices)


def maintain_privilege(session, rel) -> bool:
    """May the current role VACUUM/ANALYZE/REINDEX ``rel``? (owner, superuser, or MAINTAIN on 17+)."""
    if session.server_version >= 170000:
        return bool(session.scalar("select pg_catalog.has_table_privilege(%s::oid, 'MAINTAIN')", (rel.oid,)))
    return bool(
        session.scalar(
            "select pg_catalog.pg_has_role(c.relowner, 'USAGE') or (select rolsuper from pg_catalog.pg_roles where rolname = current_user)"
            " from pg_catalog.pg_class c where c.oid = %s",
            (rel.oid,),
        )
    )


def maintain_each(plan, ctx, work) -> tuple[list[dict[str, Any]], list[Any], list[str]]:
    """Run the plan's steps one at a time on one dedicated autocommit connection.

    ``work(s, step, timeouts)`` does one step and returns (its result row, its
    verifications, its warnings); the row's first value names the object. After each
    step ``ctx.progress["committed"]`` says what is done (a failure keeps it, and the
    audit record says so). Returns every row, verification and warning.
    """
    timeouts = {"statement_timeout": plan.parameters["statement_timeout"], "lock_timeout": plan.parameters["lock_timeout"]}
    objects, verified, warnings, done = [], [], [], []
    with autocommit_session(plan.session) as s:
        for step in plan.state["steps"]:
            obj, checks, notes = work(s, step, timeouts)
            objects.append(obj)
            verified += checks
            warnings += notes
            done.append(f"{step['op']} {next(iter(obj.values()))}")
            ctx.progress["committed"] = "done: " + ", ".join(done)
    return objects, verified, warnings
