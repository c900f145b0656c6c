"""Deltas between consecutive snapshots, robust to resets and restarts, and their sums over a period.

``pg_stat_statements`` counters are cumulative since an entry started counting. Between two
snapshots an entry's activity is ``current - previous``, unless its counters restarted in
between, in which case it is ``current`` (what was counted since the restart: the activity
between the previous snapshot and the restart is lost, and is not invented). A restart is seen as

* ``pg_stat_statements_info.stats_reset`` changed: every entry was reset
  (``pg_stat_statements_reset()``, and also a crash: the postmaster re-initialises shared memory
  and ``pg_stat_statements`` starts empty, while ``pg_postmaster_start_time()`` stays);
* the entry's ``stats_since`` changed (PostgreSQL 17+): this entry was reset or evicted;
* a counter fell (``calls`` or ``total_exec_time`` lower than before): the entry restarted
  without anything else saying so;
* the entry is new.

A server restart alone is **not** a reset: ``pg_stat_statements`` saves its counters when the
postmaster shuts down (fast, smart, and even immediate shutdown) and reloads them, so
``current - previous`` stays right (tests/history/test_deltas.py checks both cases).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable, Mapping

import psycopg
from psycopg.rows import dict_row

#: the cumulative counters a statement snapshot holds
COUNTERS = ("calls", "total_exec_time", "rows", "shared_blks_hit", "shared_blks_read", "shared_blks_dirtied",
            "shared_blks_written", "temp_blks_read", "temp_blks_written")
#: counters that can only grow while an entry lives (a fall means it restarted)
_MONOTONIC = ("calls", "total_exec_time")

Key = tuple[int, int, int]  # (queryid, userid, dbid)


@dataclass(frozen=True)
class Boundary:
    """What happened between two snapshots: ``reset`` = every statement entry restarted."""

    reset: bool
    restart: bool
    reason: str | None


def boundary(previous: Mapping[str, Any], current: Mapping[str, Any]) -> Boundary:
    """Classify the interval between two snapshot rows (``stats_reset``, ``postmaster_start``)."""
    restart = previous.get("postmaster_start") != current.get("postmaster_start")
    before, after = previous.get("stats_reset"), current.get("stats_reset")
    reset = before is not None and after is not None and before != after
    reasons = [r for r, on in (("pg_stat_statements reset", reset), ("server restart", restart)) if on]
    return Boundary(reset, restart, " and ".join(reasons) or None)


def entry_restarted(previous: Mapping[str, Any] | None, current: Mapping[str, Any]) -> bool:
    """Whether one entry's counters restarted between two snapshots (see the module docstring)."""
    if previous is None:
        return True
    if previous.get("stats_since") is not None and current.get("stats_since") is not None \
            and previous["stats_since"] != current["stats_since"]:
        return True
    return any((current[c] or 0) < (previous[c] or 0) for c in _MONOTONIC)


def statement_deltas(previous: Iterable[Mapping[str, Any]], current: Iterable[Mapping[str, Any]], *,
                     reset: bool = False) -> dict[Key, dict[str, float]]:
    """Per entry of ``current``: its counters' growth since ``previous`` (``reset``: every entry restarted)."""
    before = {_key(row): row for row in previous}
    out: dict[Key, dict[str, float]] = {}
    for row in current:
        key = _key(row)
        prior = None if reset else before.get(key)
        if entry_restarted(prior, row):
            out[key] = {c: row[c] or 0 for c in COUNTERS}
        else:
            out[key] = {c: (row[c] or 0) - (prior[c] or 0) for c in COUNTERS}
    return out


def _key(row: Mapping[str, Any]) -> Key:
    return (row["queryid"], row["userid"], row["dbid"])


SNAPSHOTS_SQL = """
select s.id, s.day, s.taken_at, s.postmaster_start, s.stats_reset, s.synthetic
from pgrunbooks.snapshots s
where s.target = %(target)s
  and s.taken_at < %(end)s
  and s.taken_at >= coalesce((select max(p.taken_at) from pgrunbooks.snapshots p
                              where p.target = %(target)s and p.taken_at < %(start)s), %(start)s)
order by s.taken_at
"""

STATEMENT_ROWS_SQL = """
select st.snapshot_id, st.queryid, st.userid, st.dbid, st.stats_since,
       st.calls, st.total_exec_time, st.rows, st.shared_blks_hit, st.shared_blks_read, st.shared_blks_dirtied,
       st.shared_blks_written, st.temp_blks_read, st.temp_blks_written
from pgrunbooks.statements st
where st.snapshot_id = any(%(ids)s)
order by st.snapshot_id, st.queryid, st.userid, st.dbid
"""


def statement_period(history: psycopg.Connection, target: str, start: datetime, end: datetime
                     ) -> dict[int, dict[str, float]]:
    """Each queryid's activity in ``[start, end)``: the deltas of consecutive snapshot pairs whose
    later snapshot falls in the period, summed (users and databases together).

    The snapshot before ``start`` is the first baseline; without one, the first snapshot of the
    period is (its counters hold activity from before the period, which is not counted).
    """
    with history.cursor(row_factory=dict_row) as cur:
        cur.execute(SNAPSHOTS_SQL, {"target": target, "start": start, "end": end})
        snaps = cur.fetchall()
        cur.execute(STATEMENT_ROWS_SQL, {"ids": [s["id"] for s in snaps]})
        rows = cur.fetchall()
    by_snapshot: dict[int, list[dict[str, Any]]] = {s["id"]: [] for s in snaps}
    for row in rows:
        by_snapshot[row["snapshot_id"]].append(row)
    totals: dict[int, dict[str, float]] = {}
    for prev, cur_snap in zip(snaps, snaps[1:]):
        edge = boundary(prev, cur_snap)
        deltas = statement_deltas(by_snapshot[prev["id"]], by_snapshot[cur_snap["id"]], reset=edge.reset)
        for (queryid, _user, _db), delta in deltas.items():
            sums = totals.setdefault(queryid, dict.fromkeys(COUNTERS, 0))
            for counter, value in delta.items():
                sums[counter] += value
    return totals


def boundaries(history: psycopg.Connection, target: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """The resets and restarts seen between consecutive snapshots in ``[start, end)``."""
    with history.cursor(row_factory=dict_row) as cur:
        cur.execute(SNAPSHOTS_SQL, {"target": target, "start": start, "end": end})
        snaps = cur.fetchall()
    out = []
    for prev, cur_snap in zip(snaps, snaps[1:]):
        edge = boundary(prev, cur_snap)
        if edge.reason:
            out.append({"between": prev["day"], "and": cur_snap["day"], "what": edge.reason})
    return out
