"""Every suite run's findings in the history store, and the previous run to compare with.

:class:`RunHistory` is what the engine holds for one run (:func:`pgrunbooks.engine.run.run_all`):
:meth:`RunHistory.compare` finds the previous run of the same suite and target — in the
history store (``pgrunbooks.runs`` / ``pgrunbooks.run_findings``, see
:mod:`pgrunbooks.history.store`), or, when the store cannot be reached, in the previous run
directory under the same ``--out`` (its ``summary.json``) — and diffs the findings
(:mod:`pgrunbooks.history.diff`); :meth:`RunHistory.record` stores this run's findings.

History never fails a run: a store that cannot be reached, is read-only or refuses the
role costs one warning line (:attr:`RunHistory.warnings`) and the directory fallback.

A baseline is a *complete* run: a run in which a runbook failed is compared (what its failed
runbooks reported last time is "not re-checked", not resolved) but neither recorded nor, in
the directory fallback, taken as a later run's previous run. Otherwise one run against a
database that was down would make every finding of the next run "new".
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Sequence

from psycopg import sql
from psycopg.rows import dict_row

from pgrunbooks.db import MarkedCursor
from pgrunbooks.history.diff import Entry, RunDiff, compare
from pgrunbooks.history.store import HISTORY_DEFAULT, IN_TARGET
from pgrunbooks.redact import redact

__all__ = ["HISTORY_DEFAULT", "RunHistory", "previous_in_directory", "record_run"]
#: how long one history statement may run: history is a side job of the run
STATEMENT_TIMEOUT = "10s"
SUMMARY = "summary.json"

_PREVIOUS_RUN = sql.SQL(
    "select r.id, r.started_at, r.run_dir from pgrunbooks.runs as r"
    " where r.suite = %s and r.target = %s and r.started_at < %s"
    " order by r.started_at desc, r.id desc limit 1"
)
_RUN_FINDINGS = sql.SQL(
    "select f.key, f.check_id, f.severity, f.object, f.title from pgrunbooks.run_findings as f"
    " where f.run_id = %s order by f.key, f.severity"
)
_INSERT_RUN = sql.SQL(
    "insert into pgrunbooks.runs (suite, target, started_at, run_dir) values (%s, %s, %s, %s) returning id"
)
_INSERT_FINDING = sql.SQL(
    "insert into pgrunbooks.run_findings (run_id, key, check_id, severity, object, title)"
    " values (%s, %s, %s, %s, %s, %s)"
)
_BOUNDED = sql.SQL("select pg_catalog.set_config('statement_timeout', %s, true)")


def utc_now() -> _dt.datetime:
    """Now, in UTC, to the microsecond (a run's ``started_at``)."""
    return _dt.datetime.now(_dt.timezone.utc)


def entries_of(results: Iterable[Any]) -> list[Entry]:
    """Every finding of the runbook results (:class:`~pgrunbooks.engine.results.RunResult`),
    with the runbook that reported it."""
    return [Entry.of(f, r.name) for r in results for f in r.findings]


def failed_runbooks(results: Iterable[Any]) -> set[str]:
    """The runbooks of ``results`` that did not finish (their findings were not all re-checked)."""
    return {r.name for r in results if r.status != "ok"}


@dataclass
class RunHistory:
    """One run's place in the history: its suite, target and start, where the history lives
    (``store`` a target string, ``None`` for ``--no-history``), and once compared its diff."""

    suite: str
    target: str
    store: str | None = HISTORY_DEFAULT
    started_at: _dt.datetime = field(default_factory=utc_now)
    diff: RunDiff | None = None
    warnings: list[str] = field(default_factory=list)
    _conn: Any = field(default=None, repr=False)
    _store_ok: bool = field(default=False, repr=False)

    def identity(self) -> dict[str, Any]:
        """What ``summary.json`` says about this run, so a later run can find it without the store."""
        return {"suite": self.suite, "target": self.target, "started_at": self.started_at.isoformat()}

    def compare(self, results: Sequence[Any], run_dir: Path) -> RunDiff:
        """Diff ``results`` against the previous run of this suite and target; sets and returns
        :attr:`diff`.

        The previous run is the latest of the one in the store and the one in a run directory
        beside ``run_dir`` (a run made while the store was down, or with ``--no-history``, is
        only there); without a usable store, the directory's."""
        previous: tuple[list[Entry], dict[str, Any]] | None = None
        if self.store is not None:
            try:
                self._conn = _connect(self.store, self.target)
                previous = _previous_in_store(self._conn, self.suite, self.target, self.started_at)
                self._store_ok = True
            except Exception as exc:  # noqa: BLE001 - history never fails a run; said once, below
                self.close()
                self.warnings.append(
                    f"warning: history store {self.store} not usable ({_why(exc)}); "
                    f"compared with the previous run directory under {run_dir.parent} instead"
                )
        in_directory = previous_in_directory(run_dir.parent, self.suite, self.target, self.started_at, exclude=run_dir)
        if in_directory is not None and (previous is None or _started(in_directory) > _started(previous)):
            previous = in_directory
        entries, about = previous if previous is not None else (None, None)
        if entries and about.get("source") == "history":
            entries = _with_runbooks(entries, Path(about["run_dir"] or ""))
        self.diff = compare(entries, entries_of(results), failed_runbooks=failed_runbooks(results), previous_run=about)
        return self.diff

    def record(self, results: Sequence[Any], run_dir: Path) -> int | None:
        """Store this run's findings (every severity) in the history store; its run id, or
        ``None`` when there is no usable store (a warning says why, if it broke now) or a
        runbook failed (an incomplete run is no baseline)."""
        if not self._store_ok or self._conn is None or failed_runbooks(results):
            self.close()
            return None
        try:
            return record_run(self._conn, self.suite, self.target, self.started_at, str(run_dir),
                              [f for r in results for f in r.findings])
        except Exception as exc:  # noqa: BLE001 - history never fails a run
            self.warnings.append(f"warning: this run was not recorded in history store {self.store} ({_why(exc)})")
            return None
        finally:
            self.close()

    def close(self) -> None:
        """Close the store connection, if open."""
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None


def _with_runbooks(entries: list[Entry], run_dir: Path) -> list[Entry]:
    """The store keeps no runbook per finding; that run's ``summary.json``, when still on this
    machine, says which runbook reported each key (so a failed runbook's findings alone are
    "not re-checked" this time, not every absent one)."""
    summary = _read_summary(run_dir / SUMMARY) if run_dir.name else None
    if summary is None:
        return entries
    by_key = {f["key"]: r.get("runbook") for r in summary.get("runbooks") or [] if isinstance(r, dict)
              for f in r.get("findings") or [] if isinstance(f, dict) and "key" in f}
    return [replace(e, runbook=by_key.get(e.key)) for e in entries]


def _started(previous: tuple[list[Entry], dict[str, Any]]) -> _dt.datetime:
    return _dt.datetime.fromisoformat(previous[1]["started_at"])


def _connect(store: str, target: str):
    from pgrunbooks.errors import UsageError
    from pgrunbooks.history import store as history_store

    if store == IN_TARGET:  # the history in the audited database: one target, named as the run named it
        if not target or ", " in target:
            raise UsageError(f"--history {IN_TARGET} needs a run on exactly one target (this one: {target or 'none'})")
        return history_store.connect(store, target=target)
    return history_store.connect(store)


def _why(exc: BaseException) -> str:
    first = (str(exc).strip().splitlines() or [""])[0]
    return redact(f"{type(exc).__name__}: {first}" if first else type(exc).__name__)


def _cursor(conn) -> MarkedCursor:
    # Every statement carries the pgrunbooks marker, as a Session's would (pgrunbooks.db).
    return MarkedCursor(conn, row_factory=dict_row)


def _previous_in_store(conn, suite: str, target: str, before: _dt.datetime) -> tuple[list[Entry], dict[str, Any]] | None:
    with conn.transaction(), _cursor(conn) as cur:
        cur.execute(_BOUNDED, (STATEMENT_TIMEOUT,))
        row = cur.execute(_PREVIOUS_RUN, (suite, target, before)).fetchone()
        if row is None:
            return None
        entries = [Entry.from_dict(r) for r in cur.execute(_RUN_FINDINGS, (row["id"],)).fetchall()]
    about = {"started_at": row["started_at"].astimezone(_dt.timezone.utc).isoformat(), "run_dir": row["run_dir"], "source": "history", "id": row["id"]}
    return entries, about


def record_run(conn, suite: str, target: str, started_at: _dt.datetime, run_dir: str, findings: Iterable[Any]) -> int:
    """Insert one run and its findings in one transaction; the new run's id."""
    with conn.transaction(), _cursor(conn) as cur:
        cur.execute(_BOUNDED, (STATEMENT_TIMEOUT,))
        run_id = cur.execute(_INSERT_RUN, (suite, target, started_at, run_dir)).fetchone()["id"]
        rows = [(run_id, f.key, f.check_id, f.severity.value, f.object, f.title) for f in findings]
        if rows:
            cur.executemany(_INSERT_FINDING, rows)
    return run_id


def previous_in_directory(out: Path, suite: str, target: str, before: _dt.datetime, *,
                          exclude: Path | None = None) -> tuple[list[Entry], dict[str, Any]] | None:
    """The latest run under ``out`` of ``suite`` on ``target`` that started before ``before``,
    read from its ``summary.json`` (written by :func:`pgrunbooks.engine.artifacts.write_index`):
    its findings and where it came from; ``None`` when there is none.

    Run directories are named by their UTC start (:func:`pgrunbooks.engine.artifacts.new_run_dir`),
    so they are read newest first and the first match is the one: a long history of runs
    costs one ``summary.json`` read per other suite run since, not one per run ever."""
    try:
        candidates = sorted((p for p in out.iterdir() if p.is_dir() and p != exclude), key=_run_order, reverse=True)
    except OSError:
        return None
    for folder in candidates:
        summary = _read_summary(folder / SUMMARY)
        if summary is None or summary.get("suite") != suite or summary.get("target") != target or not _complete(summary):
            continue
        try:
            started = _dt.datetime.fromisoformat(summary["started_at"])
        except (KeyError, TypeError, ValueError):
            continue
        if started.tzinfo is not None and started < before:  # ours are UTC; a naive time is not ours
            break
    else:
        return None
    entries = [
        Entry.from_dict(f, runbook=r.get("runbook"))
        for r in summary.get("runbooks") or [] if isinstance(r, dict)
        for f in r.get("findings") or [] if isinstance(f, dict) and "key" in f
    ]
    return entries, {"started_at": started.isoformat(), "run_dir": str(folder), "source": "directory"}


def _complete(summary: dict) -> bool:
    """Whether every runbook of that run finished (only a complete run is a baseline)."""
    runbooks = summary.get("runbooks")
    return isinstance(runbooks, list) and all(isinstance(r, dict) and r.get("status") == "ok" for r in runbooks)


def _run_order(folder: Path) -> tuple[str, int]:
    """``20261202T011205Z-2`` after ``20261202T011205Z`` (the second run of that second)."""
    stamp, _, n = folder.name.partition("-")
    return stamp, int(n) if n.isdigit() else 1


def _read_summary(path: Path) -> dict | None:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None
