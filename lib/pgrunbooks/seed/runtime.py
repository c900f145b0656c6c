"""Runtime faults: live sessions for incident runbooks and their tests.

Each is a context manager that opens real, separate connections (and threads
where a session must block), waits until the state is visible in
``pg_stat_activity``, yields the backend pid(s), and on exit cancels, rolls
back and closes everything it opened, even if the test terminated the
sessions itself.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Callable, Iterator, Sequence

import psycopg
from psycopg import sql

DEFAULT_TIMEOUT = 15.0


def _connect(conninfo: str, application_name: str, *, autocommit: bool = True) -> psycopg.Connection:
    conn = psycopg.connect(conninfo, autocommit=True, application_name=application_name)
    # Role-level settings (anon/authenticated have statement timeouts) must not
    # end the planted state early.
    conn.execute("set statement_timeout = 0")
    conn.execute("set lock_timeout = 0")
    conn.execute("set idle_in_transaction_session_timeout = 0")
    conn.autocommit = autocommit
    return conn


def _wait_for(conninfo: str, query: str, params: Sequence, what: str, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Poll ``query`` (returning one boolean) on a separate connection until true."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(conninfo, autocommit=True, application_name="pgrunbooks/seed-monitor") as mon:
        while True:
            if mon.execute(query, params).fetchone()[0]:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
            time.sleep(0.02)


def _quiet_close(conn: psycopg.Connection) -> None:
    with contextlib.suppress(Exception):
        if not conn.closed and not conn.autocommit:
            conn.rollback()
    with contextlib.suppress(Exception):
        conn.close()


def _cancel(conn: psycopg.Connection) -> None:
    with contextlib.suppress(Exception):
        if not conn.closed:
            conn.cancel_safe() if hasattr(conn, "cancel_safe") else conn.cancel()


class _Runner(threading.Thread):
    """Runs one statement on *conn* in a thread; errors (cancel, terminate) are kept, not raised."""

    def __init__(self, conn: psycopg.Connection, query, params=None):
        super().__init__(daemon=True)
        self.conn, self.query, self.params = conn, query, params
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.conn.execute(self.query, self.params)
        except BaseException as exc:  # noqa: BLE001 - the canceller expects it
            self.error = exc


def _stop(runners: Sequence[_Runner], conns: Sequence[psycopg.Connection]) -> None:
    for r in runners:
        _cancel(r.conn)
    for r in runners:
        r.join(10)
    for c in conns:
        _quiet_close(c)


def _relation(table: str) -> sql.Composable:
    return sql.Identifier(*table.split(".", 1))


@contextlib.contextmanager
def long_running_query(
    conninfo: str, seconds: float = 600, *, application_name: str = "victorysync/api",
    timeout: float = DEFAULT_TIMEOUT,
) -> Iterator[int]:
    """A session running ``select pg_sleep(seconds)``; yields its pid."""
    conn = _connect(conninfo, application_name)
    pid = conn.info.backend_pid
    runner = _Runner(conn, "select pg_sleep(%s)", (seconds,))
    try:
        runner.start()
        _wait_for(
            conninfo,
            "select exists (select 1 from pg_stat_activity where pid = %s and state = 'active'"
            " and query like '%%pg_sleep%%')",
            (pid,),
            f"pid {pid} to run pg_sleep",
            timeout,
        )
        yield pid
    finally:
        _stop([runner], [conn])


@contextlib.contextmanager
def idle_in_transaction(
    conninfo: str, table: str = "public.organizations", *, application_name: str = "victorysync/worker",
    timeout: float = DEFAULT_TIMEOUT,
) -> Iterator[int]:
    """A session that locked one row of *table* (``for update``) and went idle
    in its transaction; yields its pid."""
    conn = _connect(conninfo, application_name, autocommit=False)
    pid = conn.info.backend_pid
    try:
        conn.execute(sql.SQL("select 1 from {} limit 1 for update").format(_relation(table))).fetchall()
        _wait_for(
            conninfo,
            "select exists (select 1 from pg_stat_activity where pid = %s and state = 'idle in transaction')",
            (pid,),
            f"pid {pid} to be idle in transaction",
            timeout,
        )
        yield pid
    finally:
        _quiet_close(conn)


@contextlib.contextmanager
def blocking_chain(
    conninfo: str, depth: int = 3, table: str = "public.organizations", *,
    timeout: float = DEFAULT_TIMEOUT,
) -> Iterator[list[int]]:
    """Session 1 holds a row lock idle in transaction; sessions 2..depth each
    try to update the same row and wait, in that order. Yields the pids,
    blocker first."""
    if depth < 2:
        raise ValueError("a blocking chain needs depth >= 2")
    rel = _relation(table)
    blocker = _connect(conninfo, "victorysync/billing-job", autocommit=False)
    conns: list[psycopg.Connection] = [blocker]
    runners: list[_Runner] = []
    try:
        row = blocker.execute(
            sql.SQL("select id from {} order by id limit 1 for update").format(rel)
        ).fetchone()
        if row is None:
            raise ValueError(f"{table} has no rows to lock")
        has_updated_at = blocker.execute(
            "select exists (select 1 from pg_attribute where attrelid = %s::regclass"
            " and attname = 'updated_at' and not attisdropped)",
            (table,),
        ).fetchone()[0]
        setter = sql.SQL("updated_at = now()") if has_updated_at else sql.SQL("id = id")
        update = sql.SQL("update {} set {} where id = %s").format(rel, setter)
        pids = [blocker.info.backend_pid]
        _wait_for(
            conninfo,
            "select exists (select 1 from pg_stat_activity where pid = %s and state = 'idle in transaction')",
            (pids[0],),
            f"blocker pid {pids[0]} to be idle in transaction",
            timeout,
        )
        for _ in range(depth - 1):
            waiter = _connect(conninfo, "victorysync/api", autocommit=False)
            conns.append(waiter)
            pid = waiter.info.backend_pid
            runner = _Runner(waiter, update, (row[0],))
            runners.append(runner)
            runner.start()
            _wait_for(
                conninfo,
                "select exists (select 1 from pg_stat_activity where pid = %s"
                " and wait_event_type = 'Lock' and cardinality(pg_blocking_pids(pid)) > 0)",
                (pid,),
                f"pid {pid} to wait on a lock",
                timeout,
            )
            pids.append(pid)
        yield pids
    finally:
        # Waiters first (cancelled, rolled back), so none of their updates can
        # commit once the blocker lets go.
        _stop(runners, conns[1:])
        _quiet_close(blocker)


@contextlib.contextmanager
def idle_connections(
    conninfo: str, n: int, *, application_name: str = "victorysync/pool", timeout: float = DEFAULT_TIMEOUT,
) -> Iterator[list[int]]:
    """*n* idle connections (each ran one query); yields their pids."""
    conns: list[psycopg.Connection] = []
    try:
        for _ in range(n):
            conn = _connect(conninfo, application_name)
            conns.append(conn)
            conn.execute("select 1").fetchall()
        pids = [c.info.backend_pid for c in conns]
        if pids:
            _wait_for(
                conninfo,
                "select count(*) = %s from pg_stat_activity where pid = any(%s) and state = 'idle'",
                (len(pids), pids),
                f"{len(pids)} idle connections",
                timeout,
            )
        yield pids
    finally:
        for c in conns:
            _quiet_close(c)


@contextlib.contextmanager
def forgotten_slot(conninfo: str, *, name: str = "victorysync_cdc", segments: int = 3) -> Iterator[str]:
    """A physical replication slot nobody consumes, reserving WAL from its creation on, then
    *segments* WAL segments written past it (a message and a switch each: about 16 MB of disk per
    segment, bounded); yields the slot's name and drops it on exit unless something else did.
    Needs a superuser (or the REPLICATION attribute) and ``max_replication_slots`` > 0."""
    conn = _connect(conninfo, "pgrunbooks/seed-slot")
    try:
        conn.execute("select pg_catalog.pg_create_physical_replication_slot(%s, true)", (name,))
        for _ in range(segments):
            # A WAL record without touching a table, then the rest of its segment skipped.
            conn.execute("select pg_catalog.pg_logical_emit_message(false, 'pgrunbooks', 'forgotten slot')")
            conn.execute("select pg_catalog.pg_switch_wal()")
        yield name
    finally:
        with contextlib.suppress(psycopg.Error):
            conn.execute("select pg_catalog.pg_drop_replication_slot(slot_name)"
                         " from pg_catalog.pg_replication_slots where slot_name = %s", (name,))
        _quiet_close(conn)


#: name -> context manager factory
RUNTIME_FAULTS: dict[str, Callable[..., contextlib.AbstractContextManager]] = {
    "long_running_query": long_running_query,
    "idle_in_transaction": idle_in_transaction,
    "blocking_chain": blocking_chain,
    "idle_connections": idle_connections,
    "forgotten_slot": forgotten_slot,
}

#: name -> check ids that must find it
RUNTIME_FINDS: dict[str, tuple[str, ...]] = {
    "long_running_query": ("long_running_queries",),
    "idle_in_transaction": ("idle_in_transaction",),
    "blocking_chain": ("blocking_locks",),
    "idle_connections": ("connections",),
    "forgotten_slot": ("replication_slots",),
}
