"""Findings in a notebook: :func:`record` reports them to the runner; the rest only shows them.

``record`` publishes findings as a display output with the MIME type
``application/vnd.pgrunbooks.findings+json``; the engine collects every such output of the
executed notebook. It may be called several times.
"""

from __future__ import annotations

from typing import Iterable

from pgrunbooks.engine.html import banner_html, counts_text, findings_table_html, redact_tree, summary_text
from pgrunbooks.findings import FINDINGS_MIME, Finding, at_or_above, severity_counts, suppress as _suppress, worst
from pgrunbooks.notebook.display import ipython, publish
from pgrunbooks.redact import redact


def record(findings: Iterable[Finding], *, suppress: Iterable[str] | None = None) -> list[Finding]:
    """Report findings to the runner (and show them): THE one call a runbook uses.

    Publishes a display output carrying ``application/vnd.pgrunbooks.findings+json`` (the
    findings as ``Finding.to_dict()``), an HTML table and a text summary. May be called
    several times; the runner merges every call. Findings whose key (or check id) is in
    ``suppress`` — by default the notebook's ``suppress`` parameter when it has one — are
    dropped and counted. Returns the findings kept.
    """
    items = [f if isinstance(f, Finding) else Finding.from_dict(f) for f in findings]
    keys = list(suppress) if suppress is not None else _namespace_suppress()
    kept = _suppress(items, keys) if keys else items
    dropped = len(items) - len(kept)
    payload = redact_tree([f.to_dict() for f in kept])
    publish(
        {
            FINDINGS_MIME: payload,
            "text/html": findings_table_html(kept, suppressed=dropped),
            "text/plain": summary_text(kept, suppressed=dropped),
        }
    )
    return _Recorded(kept)


class _Recorded(list):
    """The findings :func:`record` returns: a plain list that does not echo as cell output."""

    def _ipython_display_(self) -> None:
        pass


def banner(findings: Iterable[Finding]) -> None:
    """Display a severity banner: worst severity and counts per severity."""
    items = list(findings)
    publish(
        {
            "text/html": banner_html(items),
            "text/plain": f"{worst(items)}: {counts_text(severity_counts(items))}",
        }
    )


def detected(findings: Iterable[Finding], *, level: str = "warning") -> None:
    """Print the severity counts and the key of every finding at or above ``level``.

    Keys name a check and an object, never a measurement, so on the deterministic
    seeded sandbox this output is the same every run: runbooks mark the cell
    ``# NBVAL_CHECK_OUTPUT`` and nbval proves each planted fault is still detected.
    """
    items = list(findings)
    lines = [counts_text(severity_counts(items))]
    flagged = sorted(at_or_above(items, level), key=lambda f: (-f.severity.rank, f.key))
    lines += [f"  [{f.severity}] {f.key}" for f in flagged]
    print(redact("\n".join(lines)))


def show_findings(findings: Iterable[Finding]) -> None:
    """Display findings as a styled table (does not report them: use :func:`record`)."""
    items = list(findings)
    publish({"text/html": findings_table_html(items), "text/plain": summary_text(items)})


def _namespace_suppress() -> list[str]:
    shell = ipython()
    value = shell.user_ns.get("suppress") if shell is not None else None
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple, set)):
        return [str(v) for v in value]
    return []
