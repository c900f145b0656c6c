"""Run-to-run diff of findings: what is new, resolved, still open since the previous run.

Pure (no database, no files): :mod:`pgrunbooks.history.runs` fetches the previous run's
findings and records this one's; this module only compares two sets of findings by their
stable key (:attr:`pgrunbooks.findings.Finding.key`, ``check_id:object``, the key a
``suppress`` list names).

Only *problems* are compared: findings at ``info`` or worse (``info``, ``warning``,
``error``, ``critical``). An ``ok`` finding ("every table has a primary key") or a
``skipped`` one says nothing is wrong, so its disappearing is not a resolution and its
appearing is not news.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from pgrunbooks.findings import Finding, Severity

#: the severities the diff tracks (ok and skipped say nothing is wrong)
TRACKED = (Severity.INFO, Severity.WARNING, Severity.ERROR, Severity.CRITICAL)
#: the least severity a new finding needs to fail a run under ``--fail-on new``
NEW_FAILS_AT = Severity.WARNING


@dataclass(frozen=True)
class Entry:
    """One finding as the diff and the history store know it (its key and what to show)."""

    key: str
    check_id: str
    severity: Severity
    object: str = ""
    title: str = ""
    #: the runbook that reported it, when known (a finding whose runbook failed this time is
    #: not re-checked, so not resolved)
    runbook: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "severity", Severity.parse(self.severity))

    @classmethod
    def of(cls, finding: Finding, runbook: str | None = None) -> "Entry":
        """The entry of a :class:`~pgrunbooks.findings.Finding`."""
        return cls(finding.key, finding.check_id, finding.severity, finding.object, finding.title, runbook)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], runbook: str | None = None) -> "Entry":
        """An entry from its :meth:`to_dict` form (``summary.json``, a store row)."""
        return cls(str(d["key"]), str(d.get("check_id") or ""), d.get("severity") or "info",
                   str(d.get("object") or ""), str(d.get("title") or ""), d.get("runbook", runbook))

    def to_dict(self) -> dict[str, Any]:
        """``{key, check_id, severity, object, title}``: what ``summary.json`` lists."""
        return {"key": self.key, "check_id": self.check_id, "severity": self.severity.value,
                "object": self.object, "title": self.title}


def tracked(entries: Iterable[Entry]) -> dict[str, Entry]:
    """The problems among ``entries`` by key; a key reported twice (two runbooks running the
    same check) counts once, at its worst severity."""
    out: dict[str, Entry] = {}
    for e in entries:
        if e.severity not in TRACKED:
            continue
        seen = out.get(e.key)
        if seen is None or e.severity.rank > seen.severity.rank:
            out[e.key] = e
    return out


def worst_first(entries: Iterable[Entry]) -> list[Entry]:
    """``entries`` worst first, then by key: the order reports list them in."""
    return sorted(entries, key=lambda e: (-e.severity.rank, e.key))


@dataclass
class RunDiff:
    """This run against the previous run of the same suite and target.

    ``previous`` describes that run (``started_at``, ``run_dir``, ``source``: ``history`` or
    ``directory``), ``None`` when there was none: then every problem is new.
    ``unchecked`` are previous problems this run could not re-check (their runbook failed).
    """

    new: list[Entry] = field(default_factory=list)
    resolved: list[Entry] = field(default_factory=list)
    open: list[Entry] = field(default_factory=list)
    unchecked: list[Entry] = field(default_factory=list)
    previous: dict[str, Any] | None = None

    def alerting(self, level: Severity | str = NEW_FAILS_AT) -> list[Entry]:
        """The new problems at or above ``level`` (what ``--fail-on new`` fails on)."""
        level = Severity.parse(level)
        return [e for e in self.new if e.severity.rank >= level.rank]

    def counts_text(self) -> str:
        """``2 new, 1 resolved, 5 still open`` (and ``, 1 not re-checked`` when some were not)."""
        text = f"{len(self.new)} new, {len(self.resolved)} resolved, {len(self.open)} still open"
        return text + (f", {len(self.unchecked)} not re-checked" if self.unchecked else "")

    def to_dict(self) -> dict[str, Any]:
        """The ``summary.json`` keys: ``new``, ``resolved``, ``open``, ``unchecked``, ``previous_run``."""
        return {
            "previous_run": dict(self.previous) if self.previous is not None else None,
            "new": [e.to_dict() for e in self.new],
            "resolved": [e.to_dict() for e in self.resolved],
            "open": [e.to_dict() for e in self.open],
            "unchecked": [e.to_dict() for e in self.unchecked],
        }


def compare(
    previous: Iterable[Entry] | None,
    current: Iterable[Entry],
    *,
    failed_runbooks: Iterable[str] = (),
    previous_run: dict[str, Any] | None = None,
) -> RunDiff:
    """Compare the problems of two runs by finding key.

    ``previous`` ``None`` (no previous run): every current problem is new. A previous problem
    absent now is *resolved*, unless the runbook that reported it failed this time (or, when
    its runbook is unknown, any runbook failed this time): then it is *unchecked*, since
    nothing looked. Each list is worst first.
    """
    now = tracked(current)
    if previous is None:
        return RunDiff(new=worst_first(now.values()), previous=None)
    before = tracked(previous)
    failed = set(failed_runbooks)
    resolved, unchecked = [], []
    for key, entry in before.items():
        if key in now:
            continue
        not_rechecked = entry.runbook in failed if entry.runbook is not None else bool(failed)
        (unchecked if not_rechecked else resolved).append(entry)
    return RunDiff(
        new=worst_first(e for k, e in now.items() if k not in before),
        resolved=worst_first(resolved),
        open=worst_first(e for k, e in now.items() if k in before),
        unchecked=worst_first(unchecked),
        previous=previous_run if previous_run is not None else {},
    )
