"""What a capture holds (:class:`Evidence`) and what ranking makes of it (:class:`Cause`).

Evidence is plain data (lists of dicts, numbers), so it serialises to a compact
``evidence.json`` (:meth:`Evidence.to_json`) and turns into pandas frames
(:meth:`Evidence.frames`) without the database. Raw activity samples are kept in memory
for charts and ranking; the JSON keeps them aggregated per time bucket and caps every list.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

#: the most rows of any one list ``to_json`` keeps (sessions, statements, lock tree…)
JSON_ROW_CAP = 200
#: seconds per bucket of the aggregated activity in ``to_json`` (and the wait-event chart)
BUCKET_S = 0.5


@dataclass(frozen=True)
class Cause:
    """One candidate root cause, as ranking names it.

    ``kind`` (e.g. ``regressed_statement``, ``lock_queue``, ``wal_retaining_slot``) is stable;
    ``object`` names what it is about (``queryid:…``, ``pid:…``, ``slot:…``, ``schema.table``);
    ``score`` orders the causes (higher first; 0 to 100); ``action`` names the guarded action
    that resolves it (``terminate_sessions``, ``drop_slot``, ``archive``, ``vacuum_analyze`` or
    ``""`` when none is offered); ``data`` carries what the action needs (pids, slot name…).
    """

    kind: str
    title: str
    object: str
    score: float
    detail: str = ""
    action: str = ""
    severity: str = "warning"
    data: dict[str, Any] = field(default_factory=dict, compare=False)

    def finding(self, playbook: str):
        """This cause as a :class:`~pgrunbooks.findings.Finding` (``check_id`` = ``<playbook>.<kind>``)."""
        from pgrunbooks.findings import Finding

        return Finding(
            check_id=f"{playbook}.{self.kind}",
            severity=self.severity,
            title=self.title,
            object=self.object,
            value=round(self.score, 1),
            detail=self.detail,
            remediation=ACTION_HINTS.get(self.action, ""),
            data={k: v for k, v in self.data.items() if isinstance(v, (int, float, str, list, bool)) or v is None},
        )


#: what a finding's remediation says for each action a cause names
ACTION_HINTS = {
    "terminate_sessions": "cancel, then terminate, the sessions of this cause: the playbook's action cell "
    "(incidents/terminate_sessions with the pids it lists)",
    "explain": "read the EXPLAIN of the statement below; restore the index or statistics it lost "
    "(weekly/index_health, weekly/vacuum_analyze), then cancel the sessions still running it",
    "drop_slot": "drop the inactive slot (the playbook's action cell, confirmed by its name) once you know "
    "no consumer will come back; a new slot starts from now",
    "archive": "move old rows out (monthly/archive_old_data, dry run first)",
    "vacuum_analyze": "VACUUM the table (weekly/vacuum_analyze, dry run first); the space becomes reusable, "
    "not returned to the OS",
    "archive_command": "fix archive_command (pg_stat_archiver.last_failed_wal says where it stopped); the "
    "segments are removed once archived",
    "work_mem": "raise work_mem for that statement's role or rewrite the sort/hash; "
    "log_temp_files shows which queries spill",
    "wait": "let it finish (it protects against transaction id wraparound); never cancel it",
}


@dataclass
class Evidence:
    """What one capture saw. See :func:`pgrunbooks.evidence.capture` for how each part is taken."""

    started_at: str
    seconds: float
    server_version: int
    #: the database's name
    datname: str
    #: one row per (sample, state, wait, query id, backend type): ``t`` (seconds since the start),
    #: ``state``, ``wait_event_type``, ``wait_event``, ``query_id``, ``backend_type``, ``sessions``,
    #: ``xact_age_s`` (the oldest of the group)
    samples: list[dict[str, Any]] = field(default_factory=list)
    sample_count: int = 0
    #: one row per session seen: pid, role, application, backend type, seen (samples), active,
    #: waits {wait: samples}, query_id, query, max xact / query age
    sessions: list[dict[str, Any]] = field(default_factory=list)
    #: pid, blocked_by, root, depth, mode, relation, query, xact_age_s… (roots have depth 0)
    lock_tree: list[dict[str, Any]] = field(default_factory=list)
    #: pg_stat_statements deltas: queryid, query, calls, total_ms, mean_ms, calls_before, mean_ms_before,
    #: temp_blks_written, shared_blks_read, rows
    statements: list[dict[str, Any]] = field(default_factory=list)
    #: pg_stat_database deltas over the window (+ checkpoints_timed, checkpoints_requested, checkpoint_write_ms)
    database: dict[str, Any] = field(default_factory=dict)
    connections: dict[str, Any] = field(default_factory=dict)
    disk: dict[str, Any] | None = None
    #: what could not be captured and why (``{"statements": "pg_stat_statements is not installed"}``)
    skipped: dict[str, str] = field(default_factory=dict)

    # -- summaries ------------------------------------------------------------------------------

    def wait_share(self) -> dict[str, float]:
        """Average number of busy sessions (:func:`busy`) per wait (``CPU``: not waiting) over the window."""
        if not self.sample_count:
            return {}
        totals: Counter = Counter()
        for row in self.samples:
            if busy(row):
                totals[wait_label(row)] += row["sessions"]
        return {k: v / self.sample_count for k, v in totals.most_common()}

    def active_average(self) -> float:
        """Average number of active client sessions over the window (the load, in sessions)."""
        if not self.sample_count:
            return 0.0
        n = sum(r["sessions"] for r in self.samples if r["state"] == "active" and r["backend_type"] == "client backend")
        return n / self.sample_count

    def buckets(self, width: float = BUCKET_S) -> list[dict[str, Any]]:
        """Activity aggregated per ``width`` seconds: t, wait, average sessions (for charts and the JSON)."""
        per: dict[tuple[float, str], float] = defaultdict(float)
        samples_in: Counter = Counter()
        seen_t: dict[float, set] = defaultdict(set)
        for row in self.samples:
            b = round(int(row["t"] / width) * width, 3)
            seen_t[b].add(row["t"])
            if busy(row):
                per[(b, wait_label(row))] += row["sessions"]
        for b, ts in seen_t.items():
            samples_in[b] = len(ts)
        return [{"t": b, "wait": w, "sessions": round(v / max(samples_in[b], 1), 3)} for (b, w), v in sorted(per.items())]

    # -- export ---------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The evidence as compact JSON-able data: activity per bucket, every list capped at :data:`JSON_ROW_CAP`."""
        return {
            "started_at": self.started_at,
            "seconds": round(self.seconds, 3),
            "server_version": self.server_version,
            "datname": self.datname,
            "sample_count": self.sample_count,
            "activity": self.buckets(),
            "wait_share": {k: round(v, 3) for k, v in self.wait_share().items()},
            "sessions": _cap(self.sessions),
            "lock_tree": _cap(self.lock_tree),
            "statements": _cap(sorted(self.statements, key=lambda r: -r["total_ms"])),
            "database": self.database,
            "connections": {**self.connections, "by": _cap(self.connections.get("by", []))},
            "disk": self.disk,
            "skipped": self.skipped,
        }

    def to_json(self, **kwargs: Any) -> str:
        """:meth:`to_dict` as JSON text (``evidence.json``)."""
        return json.dumps(self.to_dict(), default=str, **kwargs)

    def frames(self) -> dict[str, Any]:
        """pandas DataFrames: samples, sessions, lock_tree, statements, connections (+ slots, tables with disk)."""
        import pandas as pd

        out = {
            "samples": pd.DataFrame(self.samples),
            "sessions": pd.DataFrame(self.sessions),
            "lock_tree": pd.DataFrame(self.lock_tree),
            "statements": pd.DataFrame(sorted(self.statements, key=lambda r: -r["total_ms"])),
            "connections": pd.DataFrame(self.connections.get("by", [])),
        }
        if self.disk:
            out["slots"] = pd.DataFrame(self.disk.get("slots", []))
            out["tables"] = pd.DataFrame(self.disk.get("largest_tables", []))
        return out

    def summary(self) -> str:
        """One line: window, samples, load, headroom."""
        c = self.connections
        return (
            f"{self.sample_count} activity samples over {self.seconds:.1f} s; {self.active_average():.2f} active sessions "
            f"on average; {len(self.statements)} statements ran; connections {c.get('used', '?')}/{c.get('usable', '?')} usable"
            + (f"; skipped: {', '.join(self.skipped)}" if self.skipped else "")
        )

    def __repr__(self) -> str:
        return f"<Evidence {self.summary()}>"


def busy(row: dict[str, Any]) -> bool:
    """Does this sample row count as load? An active client session, or a background process that is not
    in its idle main loop (wait event type ``Activity``: the checkpointer, walwriter… waiting for work)."""
    if row.get("backend_type") == "client backend":
        return row.get("state") == "active"
    return row.get("wait_event_type") != "Activity"


def wait_label(row: dict[str, Any]) -> str:
    """``Lock:transactionid``, ``IO:DataFileRead``… or ``CPU`` (active, no wait event)."""
    if row.get("wait_event_type"):
        return f"{row['wait_event_type']}:{row.get('wait_event') or ''}"
    return "CPU"


def _cap(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [dict(r) for r in rows[:JSON_ROW_CAP]]


def as_dict(cause: Cause) -> dict[str, Any]:
    return asdict(cause)
