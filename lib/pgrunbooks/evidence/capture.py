"""Capture evidence before deciding anything: :func:`capture`.

On the playbook's ONE connection, read-only for the whole capture, every statement bounded
by ``statement_timeout``:

1. snapshots *before* the window: pg_stat_statements (per query id, this database),
   pg_stat_database and the checkpointer's counters, and the lock tree;
2. the window: ``pg_stat_activity`` sampled ``samples`` times over ``seconds`` (each sample its
   own transaction, since the view is a snapshot per transaction; our own backend left out),
   aggregated as it goes (per state/wait/query id/backend type, and per session); the lock
   tree a few more times;
3. snapshots *after*: the same counters (the evidence keeps the deltas: what is hot *now*,
   not totals since a reset), connections against the usable slots, and with ``disk=True``
   pg_wal, replication slots, the archiver, temp files and the largest tables.

Works as a ``pg_monitor``-only role (pg_stat_statements also needs USAGE on its schema;
without it the statements are ``skipped`` with the reason, never a crash).
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from functools import lru_cache
from importlib import resources
from typing import Any, Iterator

import psycopg
from psycopg import sql

from pgrunbooks import audit, pgss
from pgrunbooks.db import QUERY_MARKER_PREFIX
from pgrunbooks.errors import UsageError
from pgrunbooks.evidence.model import Evidence, busy, wait_label

#: lock tree snapshots per window (start and end included)
LOCK_SNAPSHOTS = 5
#: the capture stops at the latest after this many times ``seconds`` (a slow server takes fewer samples)
MAX_STRETCH = 3.0
#: evidence must never queue behind the locks it is looking at (sizes open relations)
LOCK_TIMEOUT = "200ms"
#: database counters whose difference the evidence keeps
_COUNTERS = ("xact_commit", "xact_rollback", "blks_read", "blks_hit", "tup_returned", "tup_fetched", "tup_inserted",
             "tup_updated", "tup_deleted", "temp_files", "temp_bytes", "deadlocks", "blk_read_time_ms", "blk_write_time_ms")


@lru_cache(maxsize=None)
def load(name: str) -> str:
    """The text of ``evidence/sql/<name>.sql``."""
    return resources.files("pgrunbooks.evidence").joinpath("sql", f"{name}.sql").read_text(encoding="utf-8")


def capture(session, *, seconds: float = 10.0, samples: int = 500, disk: bool = False,
            statement_timeout: str = "5s", progress: bool = True) -> Evidence:
    """Sample ``session``'s server for ``seconds`` (``samples`` activity samples) and return the :class:`Evidence`.

    Read-only (the connection is switched to read-only for the capture, and back), each
    statement bounded by ``statement_timeout``. ``disk=True`` adds WAL, slots, archiver, temp
    files and the largest tables. ``progress`` shows a bar (one final line in a report).
    """
    seconds, samples = _validate(seconds, samples)
    reader = _Reader(session, statement_timeout)
    with read_only(session):
        ev = Evidence(started_at=audit.utc_now(), seconds=0.0, server_version=session.server_version,
                      datname=session.scalar("select pg_catalog.current_database()"))
        pgss, since = _pgss_view(reader, ev)
        before = _counters(reader, ev, pgss)
        trees = [reader.rows(load("lock_tree"))]
        window = _Window()
        started = time.monotonic()
        bar = _bar(progress, samples)
        try:
            _sample(reader, window, started, seconds, samples, trees, bar)
        finally:
            if bar is not None:
                bar.close()
        ev.seconds = time.monotonic() - started
        trees.append(reader.rows(load("lock_tree")))
        after = _counters(reader, ev, pgss)
        window.finish(ev)
        ev.lock_tree = lock_tree(max(reversed(trees), key=len))
        ev.statements = statement_deltas(before["statements"], after["statements"], window.by_query)
        ev.database = {k: _delta(after["database"].get(k), before["database"].get(k)) for k in after["database"]}
        ev.database["statements_since_s"] = since
        ev.connections = connections(reader.rows(load("connections")), window.peak_clients)
        if disk:
            ev.disk = _disk(reader, ev)
    return ev


def _validate(seconds: Any, samples: Any) -> tuple[float, int]:
    try:
        seconds, samples = float(seconds), int(samples)
    except (TypeError, ValueError):
        raise UsageError(f"seconds and samples must be numbers, not {seconds!r} / {samples!r}") from None
    if not 0 < seconds <= 600:
        raise UsageError(f"the evidence window must be between 0 and 600 seconds, not {seconds:g}")
    if not 1 <= samples <= 60_000:
        raise UsageError(f"samples must be between 1 and 60000, not {samples}")
    return seconds, samples


@contextlib.contextmanager
def read_only(session) -> Iterator[None]:
    """Every transaction of the capture is ``BEGIN READ ONLY``, even on a playbook's read-write session."""
    conn = session.conn
    previous = conn.read_only
    if not previous:
        conn.read_only = True
    try:
        yield
    finally:
        if not previous:
            conn.read_only = previous


class _Reader:
    """Runs the evidence queries on the session, each bounded by the capture's statement timeout."""

    def __init__(self, session, statement_timeout: str):
        self.session, self.timeout = session, statement_timeout

    def rows(self, query: Any, params: Any = None) -> list[dict[str, Any]]:
        return self.session.fetch(query, params, statement_timeout=self.timeout, lock_timeout=LOCK_TIMEOUT)

    def optional(self, ev: Evidence, part: str, query: Any, params: Any = None) -> list[dict[str, Any]] | None:
        """:meth:`rows`, or None with the reason in ``ev.skipped[part]`` (privilege, missing extension…)."""
        try:
            return self.rows(query, params)
        except psycopg.errors.InsufficientPrivilege:
            ev.skipped[part] = "permission denied: needs pg_monitor (pg_read_all_stats, pg_read_all_settings)"
        except psycopg.errors.ObjectNotInPrerequisiteState:  # 55000: pg_stat_statements not preloaded
            ev.skipped[part] = "not available: pg_stat_statements must be in shared_preload_libraries"
        except psycopg.errors.LockNotAvailable:
            ev.skipped[part] = f"a lock it needs is held or queued for more than {LOCK_TIMEOUT}: see the lock tree"
        except psycopg.errors.QueryCanceled:
            ev.skipped[part] = f"cancelled by the statement timeout ({self.timeout})"
        except (psycopg.errors.UndefinedFunction, psycopg.errors.UndefinedTable, psycopg.errors.UndefinedObject):
            ev.skipped[part] = "not available on this server"
        return None


def _bar(progress: bool, samples: int):
    if not progress:
        return None
    from pgrunbooks.progress import progress_bar

    return progress_bar(total=samples, desc="evidence", unit="samples")


def _pgss_view(reader: _Reader, ev: Evidence) -> tuple[sql.Composable | None, float | None]:
    """The statements query on pg_stat_statements in its schema, and the seconds since its statistics
    were reset (the baseline of a spike); None with the reason in ``ev.skipped`` when unusable."""
    row = reader.rows(pgss.LOCATE_SQL)
    found = pgss.Pgss.from_row(row[0]) if row else None
    if found is None or not found.usable:
        ev.skipped["statements"] = found.unusable_reason if found else pgss.NOT_INSTALLED
        return None, None
    info = reader.optional(ev, "statements", sql.SQL(
        "select extract(epoch from pg_catalog.now() - i.stats_reset)::float8 as since from {} i"
    ).format(found.relation("pg_stat_statements_info")))
    since = info[0]["since"] if info else None
    return sql.SQL(load("statements")).format(pgss=found.relation()), since


def _counters(reader: _Reader, ev: Evidence, pgss) -> dict[str, Any]:
    """One snapshot of the cumulative counters: statements by query id, database, checkpoints."""
    from pgrunbooks.checks.registry import load_sql

    statements = {}
    if pgss is not None and "statements" not in ev.skipped:
        rows = reader.optional(ev, "statements", pgss, {"marker": QUERY_MARKER_PREFIX})
        statements = {r["queryid"]: r for r in rows or []}
    database = dict((reader.rows(load("database")) or [{}])[0])
    checkpoints = reader.optional(ev, "checkpoints", load_sql("checkpoints", ev.server_version))
    if checkpoints:
        c = checkpoints[0]
        database.update(checkpoints_timed=c["timed"], checkpoints_requested=c["requested"], checkpoint_write_ms=c["write_ms"])
    return {"statements": statements, "database": database}


def _sample(reader: _Reader, window: "_Window", started: float, seconds: float, samples: int,
            trees: list, bar) -> None:
    """Take ``samples`` activity samples, evenly spaced over ``seconds`` (fewer if the server is too slow)."""
    interval = seconds / samples
    deadline = started + seconds * MAX_STRETCH
    tree_every = max(samples // (LOCK_SNAPSHOTS - 1), 1)
    query = load("activity_sample")
    i = 0
    while i < samples:
        pause = started + i * interval - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        elif time.monotonic() > deadline:
            break
        window.add(time.monotonic() - started, reader.rows(query))
        i += 1
        if bar is not None:
            bar.update(1)
        if i % tree_every == 0 and i < samples:
            trees.append(reader.rows(load("lock_tree")))


class _Window:
    """Aggregates activity samples as they come (nothing per raw row is kept beyond the groups)."""

    def __init__(self) -> None:
        self.samples: list[dict[str, Any]] = []
        self.count = 0
        self.sessions: dict[int, dict[str, Any]] = {}
        self.by_query: Counter = Counter()  # query id -> active sessions summed over samples
        self.peak_clients = 0

    def add(self, t: float, rows: list[dict[str, Any]]) -> None:
        self.count += 1
        groups: dict[tuple, dict[str, Any]] = {}
        clients = 1  # our own session holds a slot too
        for r in rows:
            clients += r["backend_type"] == "client backend"
            key = (r["state"], r["wait_event_type"], r["wait_event"], r["query_id"], r["backend_type"])
            g = groups.get(key)
            if g is None:
                groups[key] = g = {"t": round(t, 3), "state": r["state"], "wait_event_type": r["wait_event_type"],
                                   "wait_event": r["wait_event"], "query_id": r["query_id"],
                                   "backend_type": r["backend_type"], "sessions": 0, "xact_age_s": None}
            g["sessions"] += 1
            if r["xact_age_s"] is not None:
                g["xact_age_s"] = round(max(g["xact_age_s"] or 0.0, r["xact_age_s"]), 3)
            if r["state"] == "active" and r["query_id"] is not None:
                self.by_query[r["query_id"]] += 1
            self._session(r)
        self.peak_clients = max(self.peak_clients, clients)
        self.samples.extend(groups.values())

    def _session(self, r: dict[str, Any]) -> None:
        s = self.sessions.get(r["pid"])
        if s is None:
            s = self.sessions[r["pid"]] = {
                "pid": r["pid"], "role": r["role"], "application": r["application"], "backend_type": r["backend_type"],
                "database": r["database"], "seen": 0, "active": 0, "waits": Counter(), "states": Counter(),
                "query_id": None, "query": None, "max_xact_age_s": None, "max_query_age_s": None,
            }
        s["seen"] += 1
        s["states"][r["state"] or ""] += 1
        if r["state"] == "active":
            s["active"] += 1
        if busy(r):
            s["waits"][wait_label(r)] += 1
        if r["query_id"] is not None:
            s["query_id"] = r["query_id"]
        if r["query"]:
            s["query"] = r["query"]
        for src, dst in (("xact_age_s", "max_xact_age_s"), ("query_age_s", "max_query_age_s")):
            if r[src] is not None and r["state"] not in (None, "idle"):
                s[dst] = round(max(s[dst] or 0.0, r[src]), 3)

    def finish(self, ev: Evidence) -> None:
        ev.samples = self.samples
        ev.sample_count = self.count
        rows = []
        for s in self.sessions.values():
            rows.append({**s, "waits": dict(s["waits"].most_common()), "states": dict(s["states"].most_common())})
        ev.sessions = sorted(rows, key=lambda s: (-s["active"], -s["seen"], s["pid"]))


def lock_tree(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The lock tree from :file:`lock_tree.sql` rows: each row gets ``root`` (the blocker at the top of
    its chain, itself blocked by nobody) and ``depth`` (0 for a root); roots also get ``waiters``."""
    by_pid = {r["pid"]: dict(r) for r in rows}
    for r in by_pid.values():
        seen, current, depth = {r["pid"]}, r, 0
        while current["blocked_by"]:
            nxt = next((p for p in current["blocked_by"] if p in by_pid and p not in seen), None)
            if nxt is None:
                break
            seen.add(nxt)
            current, depth = by_pid[nxt], depth + 1
        r["root"], r["depth"] = current["pid"], depth
    waiters = Counter(r["root"] for r in by_pid.values() if r["depth"] > 0)
    for r in by_pid.values():
        r["waiters"] = waiters.get(r["pid"], 0) if r["depth"] == 0 else 0
        r["blocked_by"] = list(r["blocked_by"])
    return sorted(by_pid.values(), key=lambda r: (r["root"], r["depth"], r["pid"]))


def statement_deltas(before: dict, after: dict, active: Counter) -> list[dict[str, Any]]:
    """pg_stat_statements deltas per query id: what ran during the window, and its mean before it."""
    out = []
    for qid, a in after.items():
        b = before.get(qid) or {}
        calls = a["calls"] - (b.get("calls") or 0)
        total = a["total_ms"] - (b.get("total_ms") or 0.0)
        if calls <= 0 and not active.get(qid):
            continue
        calls_before = b.get("calls") or 0
        out.append({
            "queryid": qid,
            "query": a["query"],
            "calls": calls,
            "total_ms": round(total, 3),
            "mean_ms": round(total / calls, 4) if calls > 0 else None,
            "calls_before": calls_before,
            "mean_ms_before": round(b["total_ms"] / calls_before, 4) if calls_before else None,
            "rows": a["rows"] - (b.get("rows") or 0),
            "temp_blks_written": a["temp_blks_written"] - (b.get("temp_blks_written") or 0),
            "shared_blks_read": a["shared_blks_read"] - (b.get("shared_blks_read") or 0),
            "active_samples": active.get(qid, 0),
        })
    return sorted(out, key=lambda r: (-r["total_ms"], r["queryid"]))


def connections(rows: list[dict[str, Any]], peak: int) -> dict[str, Any]:
    """Client connections against the usable slots: ``max_connections`` minus both reserves."""
    first = rows[0] if rows else {}
    limit = first.get("max_connections")
    reserved_su, reserved = first.get("superuser_reserved", 0), first.get("reserved", 0)
    usable = (limit - reserved_su - reserved) if limit is not None else None
    used = sum(r["sessions"] for r in rows)
    keep = ("role", "application", "state", "sessions", "oldest_state_s", "oldest_xact_s")
    return {
        "max_connections": limit,
        "superuser_reserved": reserved_su,
        "reserved": reserved,
        "usable": usable,
        "used": used,
        "peak_used": max(peak, used),
        "headroom": (usable - used) if usable is not None else None,
        "by": [{k: r[k] for k in keep} for r in rows],
    }


def _disk(reader: _Reader, ev: Evidence) -> dict[str, Any]:
    """Where the space goes: pg_wal, slots, archiver, temp files, the largest tables."""
    from pgrunbooks.checks.registry import load_sql

    wal = reader.optional(ev, "wal", load("wal"))
    slots = reader.optional(ev, "slots", load_sql("replication_slots", ev.server_version))
    archiver = reader.optional(ev, "archiver", load("archiver"))
    temp = reader.optional(ev, "temp_files", load("temp_files"))
    tables = reader.optional(ev, "largest_tables", load("largest_tables"))
    return {
        "wal": wal[0] if wal else None,
        "slots": slots or [],
        "archiver": archiver[0] if archiver else None,
        "temp_files": temp[0] if temp else None,
        "largest_tables": tables or [],
        "database_bytes": tables[0]["database_bytes"] if tables else None,
    }


def _delta(after: Any, before: Any) -> Any:
    if isinstance(after, (int, float)) and isinstance(before, (int, float)):
        return round(after - before, 3) if isinstance(after, float) else after - before
    return after
