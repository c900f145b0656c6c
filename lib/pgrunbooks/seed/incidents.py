"""Runtime faults for the incident playbooks: live, undoable states of a running database.

Each is a context manager taking an admin ``conninfo`` (a superuser, to the seeded database):
it plants the state with real, separate connections (threads where a session must keep
working or block), waits until the state is visible where the playbook looks for it
(``pg_stat_activity``, ``pg_replication_slots``, ``pg_stat_statements``, ``pg_policies``),
yields a frozen :class:`Planted` describing it, and on exit undoes everything it did —
cancelled and closed sessions, dropped slot, restored policy — even when the trainee or a
playbook's action already ended some of it. Nothing here changes a table's rows.

The sessions' ``application_name`` values are the app's (``victorysync/…``), so playbooks
rank them the way a DBA would read them. Faults in the catalogue: :mod:`.faults.catalogue`
(``RUNTIME_FAULT_LIST`` in ``faults/runtime_catalogue.py``); a process holding one until SIGTERM: :mod:`.hold`.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from dataclasses import dataclass
from typing import Iterator, Optional, Sequence

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from .runtime import DEFAULT_TIMEOUT, _cancel, _connect, _quiet_close, _relation, _Runner, _wait_for

#: the statement that regresses: an org's recent calls with their recordings (the app's call log)
REGRESSED_QUERY = (
    "select c.id, c.created_at, c.status, c.duration, r.url"
    " from public.calls c left join public.recordings r on r.call_id = c.id"
    " where c.org_id = $1 order by c.created_at desc limit 20"
)
#: fast executions recorded in pg_stat_statements before the plan flips
FAST_CALLS = 400
#: what the regressed sessions turn off: every index path (as if the index were gone)
_FLIPPED_PLAN = ("enable_indexscan", "enable_bitmapscan", "enable_indexonlyscan")

#: a sort per organization that cannot fit a tiny work_mem
TEMP_SPILL_QUERY = (
    "select c.org_id, count(distinct (c.to_number, c.created_at)) as distinct_calls,"
    " count(distinct (c.from_number, c.duration)) as distinct_callers"
    " from public.calls c group by c.org_id order by c.org_id"
)
TEMP_WORK_MEM = "64kB"

#: the role the app's sessions connect as (Supabase's direct connections use it)
APP_ROLE = "postgres"
SLOT_NAME = "victorysync_cdc"
FLOOD_APPLICATION = "victorysync/api"


@dataclass(frozen=True, kw_only=True)
class Planted:
    """What a runtime fault planted. ``kind`` is the fault's name; the other fields are filled
    where they mean something for that kind (``pids``: every session the fault holds open)."""

    kind: str
    pids: tuple[int, ...] = ()
    queryid: Optional[int] = None
    query: Optional[str] = None
    root_pid: Optional[int] = None
    ddl_pid: Optional[int] = None
    waiter_pids: tuple[int, ...] = ()
    table: Optional[str] = None
    application_name: Optional[str] = None
    slot: Optional[str] = None
    retained_bytes: Optional[int] = None
    policy: Optional[str] = None
    #: regressed_statement: the mean time per call (ms) of its fast history, before the plan flipped
    baseline_mean_ms: Optional[float] = None

    def as_dict(self) -> dict:
        """The non-empty fields, JSON-ready (what ``sandbox fault start`` prints)."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()
                if v not in (None, ())}


# ----------------------------------------------------------------------------- helpers


def _app(conninfo: str, application_name: str, *, autocommit: bool = True) -> psycopg.Connection:
    """A session of the app: as :data:`APP_ROLE`, role-level timeouts off (see runtime._connect)."""
    return _connect(make_conninfo(conninfo, user=APP_ROLE), application_name, autocommit=autocommit)


class _Loop(threading.Thread):
    """Runs one statement on *conn* again and again until stopped (cancel ends the one running)."""

    def __init__(self, conn: psycopg.Connection, query, params=None, *, prepare: bool = True):
        super().__init__(daemon=True)
        self.conn, self.query, self.params, self.prepare = conn, query, params, prepare
        self.stopping = threading.Event()
        self.runs = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.conn.execute(self.query, self.params, prepare=self.prepare).fetchall()
                self.runs += 1
            except psycopg.errors.QueryCanceled:
                continue  # our own cancel at stop, or a playbook's cancel: the app retries
            except BaseException as exc:  # noqa: BLE001 - terminated: the loop ends, stop() cleans up
                self.error = exc
                return

    def stop(self) -> None:
        self.stopping.set()
        _cancel(self.conn)


def _stop_loops(loops: Sequence[_Loop]) -> None:
    for loop in loops:
        loop.stop()
    for loop in loops:
        loop.join(10)
        _quiet_close(loop.conn)


def _await_runs(loops: Sequence[_Loop], timeout: float, what: str) -> None:
    """Until every loop has completed a run (raises TimeoutError, or when one of them failed)."""
    deadline = time.monotonic() + timeout
    while not all(loop.runs for loop in loops):
        if time.monotonic() > deadline or any(loop.error for loop in loops):
            raise TimeoutError(what)
        time.sleep(0.02)


def _usable_connections(conn: psycopg.Connection) -> int:
    """``max_connections`` minus the reserved slots (superuser, and on 16+ ``reserved_connections``)."""
    return conn.execute(
        "select current_setting('max_connections')::int"
        " - current_setting('superuser_reserved_connections')::int"
        " - coalesce(nullif(current_setting('reserved_connections', true), '')::int, 0)"
    ).fetchone()[0]


def _some_org(conn: psycopg.Connection) -> object:
    """The organization with the most calls (the regressed statement is slowest there)."""
    row = conn.execute(
        "select c.org_id from public.calls c group by c.org_id order by count(*) desc, c.org_id limit 1"
    ).fetchone()
    if row is None:
        raise ValueError("public.calls is empty: seed the database first")
    return row[0]


# ----------------------------------------------------------------------------- high load


@contextlib.contextmanager
def regressed_statement(conninfo: str, *, clients: int = 2, timeout: float = DEFAULT_TIMEOUT) -> Iterator[Planted]:
    """An org's recent-calls query, first run :data:`FAST_CALLS` times the fast way (recorded in
    ``pg_stat_statements``), then run back to back by *clients* sessions whose plan flipped to
    sequential scans (as after a dropped index or a bad deploy's settings): same query id, 20-100
    times the time per call, all of it CPU. Yields its queryid, its fast mean and the pids."""
    if clients < 1:
        raise ValueError("regressed_statement needs clients >= 1")
    loops: list[_Loop] = []
    warm = _app(conninfo, "victorysync/api")
    try:
        org = _some_org(warm)
        # Prepared like the app's driver: one query id for the fast and the slow runs.
        with warm.cursor() as cur:
            cur.executemany(REGRESSED_QUERY.replace("$1", "%s"), [(org,)] * FAST_CALLS)
        history = warm.execute(
            "select s.queryid, s.mean_exec_time from extensions.pg_stat_statements s"
            " where s.dbid = (select oid from pg_catalog.pg_database where datname = current_database())"
            " and s.userid = (select oid from pg_catalog.pg_roles where rolname = current_user)"
            " and s.query like %s and s.calls >= %s order by s.calls desc limit 1",
            ("select c.id, c.created_at, c.status, c.duration, r.url%", FAST_CALLS),
        ).fetchone()
        for _ in range(clients):
            conn = _app(conninfo, "victorysync/api")
            for setting in _FLIPPED_PLAN:
                conn.execute(sql.SQL("set {} = off").format(sql.Identifier(setting)))
            loops.append(_Loop(conn, REGRESSED_QUERY.replace("$1", "%s"), (org,)))
        for loop in loops:
            loop.start()
        pids = [loop.conn.info.backend_pid for loop in loops]
        _await_runs(loops, timeout, "the regressed sessions did not complete a run")
        _wait_for(conninfo, "select exists (select 1 from pg_stat_activity where pid = any(%s) and state = 'active'"
                  " and query like '%%public.recordings%%')", (pids,), "the regressed statement to run", timeout)
        yield Planted(kind="regressed_statement", pids=tuple(pids), queryid=history[0] if history else None,
                      baseline_mean_ms=history[1] if history else None,
                      query=REGRESSED_QUERY, table="public.calls", application_name="victorysync/api")
    finally:
        _stop_loops(loops)
        _quiet_close(warm)


@contextlib.contextmanager
def lock_queue(
    conninfo: str, *, table: str = "public.calls", waiters: int = 3, timeout: float = DEFAULT_TIMEOUT,
) -> Iterator[Planted]:
    """A billing job's transaction that read *table* and went idle (the root, holding ACCESS
    SHARE), a migration's ``alter table … alter column … set default`` (ACCESS EXCLUSIVE,
    queued behind it), and *waiters* app reads of the table queued behind the DDL. The DDL
    re-sets the column's existing default, so it changes nothing if it ever runs. Yields the
    pids; on exit the DDL is cancelled first, then the readers, then the root rolls back."""
    if waiters < 1:
        raise ValueError("lock_queue needs waiters >= 1")
    rel = _relation(table)
    root = _app(conninfo, "victorysync/billing-job", autocommit=False)
    runners: list[_Runner] = []
    ddl_conn: psycopg.Connection | None = None
    try:
        root.execute(sql.SQL("select count(*) from {}").format(rel)).fetchall()
        column = root.execute(
            "select a.attname, pg_catalog.pg_get_expr(d.adbin, d.adrelid) from pg_catalog.pg_attrdef d"
            " join pg_catalog.pg_attribute a on a.attrelid = d.adrelid and a.attnum = d.adnum"
            " where d.adrelid = %s::regclass and not a.attisdropped order by a.attnum limit 1",
            (table,),
        ).fetchone()
        if column is None:
            raise ValueError(f"{table} has no column with a default for the queued DDL to re-set")
        ddl = sql.SQL("alter table {} alter column {} set default {}").format(
            rel, sql.Identifier(column[0]), sql.SQL(column[1]))  # the catalogue's own expression text
        root_pid = root.info.backend_pid
        ddl_conn = _app(conninfo, "victorysync/migrations")
        ddl_run = _Runner(ddl_conn, ddl)
        runners.append(ddl_run)
        ddl_run.start()
        ddl_pid = ddl_conn.info.backend_pid
        _wait_for(conninfo, "select exists (select 1 from pg_stat_activity where pid = %s and wait_event_type = 'Lock')",
                  (ddl_pid,), f"the DDL (pid {ddl_pid}) to queue", timeout)
        reader = sql.SQL("select count(*) from {}").format(rel)
        waiter_pids = []
        for _ in range(waiters):
            conn = _app(conninfo, "victorysync/api")
            run = _Runner(conn, reader)
            runners.append(run)
            run.start()
            waiter_pids.append(conn.info.backend_pid)
        _wait_for(
            conninfo,
            "select count(*) = %s from pg_stat_activity where pid = any(%s) and wait_event_type = 'Lock'",
            (len(waiter_pids), waiter_pids),
            f"{waiters} readers to queue behind the DDL",
            timeout,
        )
        yield Planted(kind="lock_queue", pids=(root_pid, ddl_pid, *waiter_pids), root_pid=root_pid, ddl_pid=ddl_pid,
                      waiter_pids=tuple(waiter_pids), table=table, query=ddl.as_string(root))
    finally:
        for run in runners:  # the DDL first: once it is gone the readers run and finish
            _cancel(run.conn)
        for run in runners:
            run.join(10)
            _quiet_close(run.conn)
        _quiet_close(root)


@contextlib.contextmanager
def temp_spills(conninfo: str, *, clients: int = 2, timeout: float = DEFAULT_TIMEOUT) -> Iterator[Planted]:
    """*clients* report sessions with ``work_mem = 64kB`` running :data:`TEMP_SPILL_QUERY` back to
    back: its distinct counts sort more than fits, so every run writes temp files
    (``pg_stat_statements.temp_blks_written``, ``pg_stat_database.temp_files``). Yields the pids
    once every session has written temp blocks."""
    if clients < 1:
        raise ValueError("temp_spills needs clients >= 1")
    loops: list[_Loop] = []
    try:
        with psycopg.connect(conninfo, autocommit=True) as mon:
            before = mon.execute("select temp_files from pg_catalog.pg_stat_database"
                                 " where datname = current_database()").fetchone()[0]
        for _ in range(clients):
            conn = _app(conninfo, "victorysync/reports")
            conn.execute(sql.SQL("set work_mem = {}").format(sql.Literal(TEMP_WORK_MEM)))
            loops.append(_Loop(conn, TEMP_SPILL_QUERY))
        for loop in loops:
            loop.start()
        pids = [loop.conn.info.backend_pid for loop in loops]
        _await_runs(loops, timeout, "the temp-spilling sessions did not complete a run")
        # pg_stat_database is flushed by the backends at most once a second: wait until it shows.
        _wait_for(conninfo, "select temp_files > %s from pg_catalog.pg_stat_database where datname = current_database()",
                  (before,), "temp files in pg_stat_database", timeout)
        yield Planted(kind="temp_spills", pids=tuple(pids), query=TEMP_SPILL_QUERY, application_name="victorysync/reports")
    finally:
        _stop_loops(loops)


# ----------------------------------------------------------------------------- connections


@contextlib.contextmanager
def connection_flood(
    conninfo: str, *, leave: int = 3, role: str = "postgres", application_name: str = FLOOD_APPLICATION,
    timeout: float = DEFAULT_TIMEOUT,
) -> Iterator[Planted]:
    """Idle connections as *role* until only *leave* usable slots are free (``max_connections``
    minus the reserved ones, minus every backend already connected): an app whose pool grew
    without a pooler in front. Yields their pids."""
    conns: list[psycopg.Connection] = []
    try:
        with psycopg.connect(conninfo, autocommit=True) as mon:
            usable = _usable_connections(mon)
            used = mon.execute("select count(*) from pg_catalog.pg_stat_activity"
                               " where backend_type = 'client backend'").fetchone()[0]
        # The monitor above is gone again; _wait_for below opens one more while checking.
        n = usable - leave - (used - 1)
        for _ in range(max(0, n)):
            conn = psycopg.connect(conninfo, user=role, autocommit=True, application_name=application_name)
            conns.append(conn)
            conn.execute("select 1").fetchall()
        pids = [c.info.backend_pid for c in conns]
        if pids:
            _wait_for(conninfo, "select count(*) = %s from pg_stat_activity where pid = any(%s) and state = 'idle'",
                      (len(pids), pids), f"{len(pids)} idle connections", timeout)
            # Sessions that were closing when we counted (ours too) leave within moments: wait for
            # the promised headroom (the monitor polling here is one of the client backends).
            _wait_for(conninfo, "select count(*) - 1 <= %s from pg_stat_activity where backend_type = 'client backend'",
                      (usable - leave,), f"{leave} usable connections left", timeout)
        yield Planted(kind="connection_flood", pids=tuple(pids), application_name=application_name)
    finally:
        for c in conns:
            _quiet_close(c)


@contextlib.contextmanager
def idle_in_transaction_holders(
    conninfo: str, *, count: int = 3, age: float = 1.0, table: str = "public.organizations",
    application_name: str = "victorysync/worker", timeout: float = DEFAULT_TIMEOUT,
) -> Iterator[Planted]:
    """*count* worker sessions that each locked a different row of *table* (``for update``) and
    went idle in their transaction; yields once all have been idle for at least *age* seconds."""
    if count < 1:
        raise ValueError("idle_in_transaction_holders needs count >= 1")
    rel = _relation(table)
    conns: list[psycopg.Connection] = []
    try:
        with psycopg.connect(conninfo, autocommit=True) as mon:
            ids = [r[0] for r in mon.execute(sql.SQL("select id from {} order by id limit %s").format(rel), (count,))]
        for i in range(count):
            conn = _app(conninfo, application_name, autocommit=False)
            conns.append(conn)
            # One row each (rows skipped by an OFFSET would be locked too, and block the next holder).
            conn.execute(sql.SQL("select 1 from {} where id = %s for update").format(rel), (ids[i % len(ids)],)).fetchall()
        pids = [c.info.backend_pid for c in conns]
        _wait_for(
            conninfo,
            "select count(*) = %s from pg_stat_activity where pid = any(%s) and state = 'idle in transaction'"
            " and state_change <= pg_catalog.clock_timestamp() - make_interval(secs => %s)",
            (len(pids), pids, age),
            f"{count} sessions idle in transaction for {age:g}s",
            timeout + age,
        )
        yield Planted(kind="idle_in_transaction_holders", pids=tuple(pids), table=table,
                      application_name=application_name)
    finally:
        for c in conns:
            _quiet_close(c)


# ----------------------------------------------------------------------------- disk


@contextlib.contextmanager
def wal_retaining_slot(conninfo: str, *, megabytes: int = 64, name: str = SLOT_NAME) -> Iterator[Planted]:
    """A physical slot nobody consumes (an abandoned CDC consumer), then enough WAL written past
    it (a message and a segment switch each) that it retains at least *megabytes* of ``pg_wal``.
    Yields the slot and its retained bytes; drops it on exit unless a playbook already did."""
    if megabytes < 1:
        raise ValueError("wal_retaining_slot needs megabytes >= 1")
    conn = _connect(conninfo, "pgrunbooks/seed-slot")
    try:
        segment = conn.execute("select setting::bigint * case unit when 'B' then 1 when 'kB' then 1024"
                               " when 'MB' then 1048576 else 1 end from pg_catalog.pg_settings"
                               " where name = 'wal_segment_size'").fetchone()[0]
        conn.execute("select pg_catalog.pg_create_physical_replication_slot(%s, true)", (name,))
        want = megabytes * 1024 * 1024
        for _ in range(math.ceil(want / segment) + 1):
            conn.execute("select pg_catalog.pg_logical_emit_message(false, 'pgrunbooks', 'wal retaining slot')")
            conn.execute("select pg_catalog.pg_switch_wal()")
            retained = _retained(conn, name)
            if retained >= want:
                break
        yield Planted(kind="wal_retaining_slot", slot=name, retained_bytes=_retained(conn, name))
    finally:
        with contextlib.suppress(psycopg.Error):
            conn.execute("select pg_catalog.pg_drop_replication_slot(slot_name)"
                         " from pg_catalog.pg_replication_slots where slot_name = %s and not active", (name,))
        _quiet_close(conn)


def _retained(conn: psycopg.Connection, name: str) -> int:
    row = conn.execute(
        "select pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), restart_lsn)::bigint"
        " from pg_catalog.pg_replication_slots where slot_name = %s", (name,),
    ).fetchone()
    return int(row[0] or 0) if row else 0


# ----------------------------------------------------------------------------- tenant data


@contextlib.contextmanager
def leaking_policy(conninfo: str) -> Iterator[Planted]:
    """The catalogue's ``leaky_policy`` (``using (true)`` for ``authenticated`` on
    ``public.billing_records``), planted now and dropped on exit (left alone if it was there
    before)."""
    from .faults.plant import FAULTS

    fault = FAULTS["leaky_policy"]
    policy = fault.names["policy"][0]
    with psycopg.connect(conninfo, autocommit=True) as conn:
        planted = not fault.present(conn)
        if planted:
            fault.apply(conn)
        try:
            yield Planted(kind="leaking_policy", policy=policy, table="public.billing_records")
        finally:
            if planted:
                conn.execute(sql.SQL("drop policy if exists {} on public.billing_records").format(sql.Identifier(policy)))


@contextlib.contextmanager
def lockout_policy(conninfo: str) -> Iterator[Planted]:
    """The catalogue's ``locking_out_policy``: ``public.invoices``' tenant policy compares the org
    id with the user id, so members see none of their invoices. On exit the policy gets back the
    ``using`` / ``with check`` it had (read from ``pg_policies`` before)."""
    from .faults.plant import FAULTS

    fault = FAULTS["locking_out_policy"]
    policy = fault.names["policy"][0]
    with psycopg.connect(conninfo, autocommit=True) as conn:
        planted = not fault.present(conn)
        before = conn.execute(
            "select qual, with_check from pg_catalog.pg_policies"
            " where schemaname = 'public' and tablename = 'invoices' and policyname = %s", (policy,),
        ).fetchone()
        if before is None:
            raise ValueError(f"public.invoices has no policy {policy}")
        if planted:
            fault.apply(conn)
        try:
            yield Planted(kind="lockout_policy", policy=policy, table="public.invoices")
        finally:
            if planted:
                restore = sql.SQL("alter policy {} on public.invoices using ({})").format(
                    sql.Identifier(policy), sql.SQL(before[0]))  # pg_policies' own deparsed expression
                if before[1] is not None:
                    restore += sql.SQL(" with check ({})").format(sql.SQL(before[1]))
                with conn.transaction():
                    conn.execute("set local role postgres")
                    conn.execute(restore)


#: name -> context manager (the catalogue's runtime entries name these)
INCIDENTS = {
    "regressed_statement": regressed_statement,
    "lock_queue": lock_queue,
    "temp_spills": temp_spills,
    "connection_flood": connection_flood,
    "idle_in_transaction_holders": idle_in_transaction_holders,
    "wal_retaining_slot": wal_retaining_slot,
    "leaking_policy": leaking_policy,
    "lockout_policy": lockout_policy,
}
