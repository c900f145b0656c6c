"""Retention: which backup folders to keep, by count and by age.

Rules, in order: the newest complete backup is always kept; beyond it, a backup is removed when it
is not among the ``keep`` newest, or when it is older than ``max_age_days`` (either rule removes).
Folders without a manifest (a backup that died half-way) older than ``stale_hours`` are removed
too: they can never be restored. Nothing outside ``backup_dir`` is touched.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from pgrunbooks.backup import manifest as mf
from pgrunbooks.errors import UsageError


@dataclass(frozen=True)
class Removal:
    """One folder retention removed (or would remove, with ``dry_run``), and why."""

    path: Path
    reason: str


def apply_retention(backup_dir: Path | str, *, keep: int | None = 7, max_age_days: float | None = None,
                    stale_hours: float = 24.0, dry_run: bool = False) -> list[Removal]:
    """Remove the backups the rules above give up; returns what was (or, dry run, would be) removed."""
    if keep is not None and keep < 1:
        raise UsageError(f"keep must be at least 1 (got {keep})", hint="keep=None keeps any number")
    if max_age_days is not None and max_age_days <= 0:
        raise UsageError(f"max_age_days must be positive (got {max_age_days})")
    root = Path(backup_dir)
    complete = mf.backups(root)  # oldest first
    removals: list[Removal] = []
    now = datetime.now(timezone.utc)
    newest_first = list(reversed(complete))
    for index, path in enumerate(newest_first):
        if index == 0:
            continue
        if keep is not None and index >= keep:
            removals.append(Removal(path, f"beyond the {keep} newest backups"))
            continue
        taken = datetime.fromisoformat(mf.read(path)["snapshot_time"])
        age_days = (now - taken).total_seconds() / 86400
        if max_age_days is not None and age_days > max_age_days:
            removals.append(Removal(path, f"{age_days:.1f} days old (max_age_days {max_age_days:g})"))
    if root.is_dir():
        for path in sorted(root.iterdir()):
            if path.is_dir() and not (path / mf.MANIFEST).exists():
                age_h = (time.time() - path.stat().st_mtime) / 3600
                if age_h > stale_hours:
                    removals.append(Removal(path, f"incomplete (no manifest), {age_h:.0f} h old"))
    if not dry_run:
        for removal in removals:
            shutil.rmtree(removal.path, ignore_errors=True)
    return removals
