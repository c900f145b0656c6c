"""The record of every drill: ``<backup_dir>/drills.jsonl`` always, the history store too when it exists.

The monthly report reads them back (:func:`read`). The history store
(``pgrunbooks.history.store.record_drill``) is optional: any failure there is a printed warning,
never a failed drill.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

DRILLS_FILE = "drills.jsonl"


def record(backup_dir: Path | str, entry: dict[str, Any], *, history_target: str | None = None) -> Path:
    """Append ``entry`` (kind, started_at, target, verdict, rto_seconds, rpo_seconds…) and forward it."""
    root = Path(backup_dir)
    root.mkdir(parents=True, exist_ok=True)
    path = root / DRILLS_FILE
    with path.open("a") as fh:
        fh.write(json.dumps(entry, sort_keys=True, default=str) + "\n")
    _to_history(entry, history_target)
    return path


def _to_history(entry: dict[str, Any], history_target: str | None) -> None:
    try:
        from pgrunbooks.history.store import HISTORY_DEFAULT, record_drill  # another part of the project
    except ImportError:
        return
    if history_target is None and not _local_history_exists(HISTORY_DEFAULT):
        return  # a drill does not create the sandbox's history database; it records there once it exists
    try:
        record_drill(
            history_target or HISTORY_DEFAULT,
            kind=entry["kind"],
            started_at=datetime.fromisoformat(entry["started_at"]),
            target=entry.get("target", ""),
            verdict=entry["verdict"],
            rto_seconds=entry.get("rto_seconds"),
            rpo_seconds=entry.get("rpo_seconds"),
            detail={k: v for k, v in entry.items() if k not in ("kind", "started_at", "target", "verdict")},
        )
    except Exception as exc:  # the drill's own record is in drills.jsonl already
        print(f"warning: the drill was not recorded in the history store: {type(exc).__name__}: {exc}",
              file=sys.stderr)


def _local_history_exists(spec: str) -> bool:
    """Whether the sandbox runs and holds the history database ``spec`` names (never creates it)."""
    import psycopg

    from pgrunbooks.sandbox import ADMIN_USER, Sandbox
    from pgrunbooks.targets import resolve

    try:
        dbname = resolve(spec).dbname
        with psycopg.connect(Sandbox().status().conninfo("postgres", ADMIN_USER), connect_timeout=3) as conn:
            return conn.execute("select exists (select from pg_catalog.pg_database where datname = %s)",
                                (dbname,)).fetchone()[0]
    except Exception:  # no sandbox running, or not ours to ask: nothing to record into
        return False


def read(backup_dir: Path | str) -> list[dict[str, Any]]:
    """Every recorded drill under ``backup_dir``, oldest first."""
    path = Path(backup_dir) / DRILLS_FILE
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def record_dashboard_check(backup_dir: Path | str, *, checked_at: str, latest_backup: str = "",
                           note: str = "") -> dict[str, Any]:
    """Record what an operator read on a hosted platform's Backups page (Supabase: no archiver visible).

    ``checked_at`` and ``latest_backup`` are ISO 8601 times; the entry's RPO is their difference.
    """
    from datetime import timezone

    checked = datetime.fromisoformat(checked_at)
    checked = checked if checked.tzinfo else checked.replace(tzinfo=timezone.utc)
    latest = datetime.fromisoformat(latest_backup) if latest_backup else None
    if latest is not None and latest.tzinfo is None:
        latest = latest.replace(tzinfo=timezone.utc)
    entry = {"kind": "dashboard_check", "started_at": checked.isoformat(), "target": "dashboard",
             "verdict": "pass" if latest else "partial", "rto_seconds": None,
             "rpo_seconds": (checked - latest).total_seconds() if latest else None,
             "latest_backup": latest.isoformat() if latest else None, "note": note}
    record(backup_dir, entry)
    return entry
