"""What ``pgrunbooks list``, ``run`` and ``suite`` print: plain-text tables for a terminal or a log."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

from pgrunbooks.engine.catalog import Runbook
from pgrunbooks.engine.html import counts_text, run_status_word, sum_counts, when_text, worst_findings
from pgrunbooks.engine.results import OK, RunResult
from pgrunbooks.redact import redact

#: how many of the worst findings the console lists after a run (index.html lists them all)
ATTENTION_SHOWN = 10

_COLUMNS = [("critical", "crit"), ("error", "err"), ("warning", "warn"), ("info", "info"), ("skipped", "skip"), ("ok", "ok")]


def runbook_table(runbooks: Sequence[Runbook]) -> str:
    """``pgrunbooks list``: group, runbook, mutates, title, purpose (the last column unpadded)."""
    rows = [(r.group, r.name, "yes" if r.mutates else "no", r.title, r.purpose) for r in runbooks]
    header = ("group", "runbook", "mutates", "title", "purpose")
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)][:4]
    return "\n".join("  ".join(str(v).ljust(w) for v, w in zip(row[:4], widths)) + "  " + str(row[4]) for row in [header, *rows])


def summary_table(results: Sequence[RunResult], run_dir: Path, *, cwd: Path | None = None, diff: Any = None) -> str:
    """The console table after a run: runbook, status (``ran``/``FAILED``), counts per severity,
    report path; then each failure with its hint, the worst findings (what to look at first),
    what changed since the previous run (``diff``, a :class:`~pgrunbooks.history.diff.RunDiff`:
    how many new, resolved, still open, and the new ones), the totals and where the index is."""
    cwd = cwd or Path.cwd()

    def shown(p: Path | None) -> str:
        if p is None:
            return "-"
        try:
            rel = os.path.relpath(p, cwd)
            return rel if not rel.startswith("..") else str(p)
        except ValueError:
            return str(p)

    header = ["runbook", "status", *[short for _, short in _COLUMNS], "time", "report"]
    rows = []
    for r in results:
        counts = r.counts
        rows.append([r.name, run_status_word(r.status), *[str(counts.get(sev, 0)) for sev, _ in _COLUMNS], f"{r.seconds:.1f}s", shown(r.html)])
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    numeric = set(range(2, 2 + len(_COLUMNS) + 1))

    def fmt(row: list[str]) -> str:
        return "  ".join(str(v).rjust(w) if i in numeric else str(v).ljust(w) for i, (v, w) in enumerate(zip(row, widths))).rstrip()

    lines = [fmt(header), fmt(["-" * w for w in widths])]
    lines += [fmt(row) for row in rows]
    for r in results:
        if r.error:
            lines.append(f"{r.name}: FAILED — {r.error.one_line()}")
            hint = r.error.hint()
            if hint:
                lines.append(f"  {hint}")
    found = worst_findings((r.name, r.findings) for r in results)
    if found:
        lines.append("look at first:")
        shown_now = found[:ATTENTION_SHOWN]
        width = max(len(str(f.severity)) for _, f in shown_now)
        name_width = max(len(name) for name, _ in shown_now)
        for name, f in shown_now:
            lines.append(f"  {str(f.severity).ljust(width)}  {name.ljust(name_width)}  {f.key}: {f.title}")
        if len(found) > ATTENTION_SHOWN:
            lines.append(f"  … and {len(found) - ATTENTION_SHOWN} more in index.html")
    lines += since_previous_lines(diff)
    failed = sum(r.status != OK for r in results)
    lines.append(f"findings: {counts_text(sum_counts(r.counts for r in results))}; {len(results)} runbook(s), {failed} failed")
    lines.append(f"reports:  {shown(run_dir / 'index.html')}")
    return redact("\n".join(lines))


def since_previous_lines(diff: Any) -> list[str]:
    """``since the previous run (…): 1 new, 0 resolved, 4 still open`` and the new ones, worst
    first (at most :data:`ATTENTION_SHOWN`); nothing without a diff."""
    if diff is None:
        return []
    if diff.previous is None:
        # the list above ("look at first") already names them
        found = f"{len(diff.new)} problem(s), all new" if diff.new else "no problem found"
        return [f"first run of this suite on this target (nothing to compare with): {found}"]
    lines = [f"since the previous run ({when_text(diff.previous.get('started_at'))}): {diff.counts_text()}"]
    width = max((len(e.severity.value) for e in diff.new[:ATTENTION_SHOWN]), default=0)
    for e in diff.new[:ATTENTION_SHOWN]:
        lines.append(f"  new       {e.severity.value.ljust(width)}  {e.key}: {e.title}")
    if len(diff.new) > ATTENTION_SHOWN:
        lines.append(f"  … and {len(diff.new) - ATTENTION_SHOWN} more new in index.html")
    for e in diff.resolved[:ATTENTION_SHOWN]:
        lines.append(f"  resolved  {e.key}: {e.title}")
    if len(diff.resolved) > ATTENTION_SHOWN:
        lines.append(f"  … and {len(diff.resolved) - ATTENTION_SHOWN} more resolved in index.html")
    return lines
