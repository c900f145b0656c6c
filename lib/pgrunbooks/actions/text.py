"""How plans and results print: text tables for terminals and logs, markdown for notebooks and reports."""

from __future__ import annotations

import datetime as dt
import json
import textwrap
from typing import Any

from pgrunbooks.redact import redact


def duration(seconds: float) -> str:
    """A rough duration for people: ``< 1 s``, ``~12 s``, ``~5 min``, ``~1.5 h``."""
    if seconds < 1:
        return "< 1 s"
    if seconds < 120:
        return f"~{seconds:.0f} s"
    if seconds < 7200:
        return f"~{seconds / 60:.0f} min"
    return f"~{seconds / 3600:.1f} h"


def cell(value: Any) -> str:
    """One table cell: numbers with thousands separators, times in ISO form, long text cut at 80."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat(sep=" ") if isinstance(value, dt.datetime) else value.isoformat()
    if isinstance(value, (list, dict)):
        return json.dumps(value, default=str)
    text = str(value).replace("\n", " ")
    return text if len(text) <= 80 else text[:77] + "..."


def text_table(rows: list[dict[str, Any]], limit: int = 50) -> str:
    """``rows`` as an aligned plain-text table (at most ``limit`` rows, then a count of the rest)."""
    cols = list(dict.fromkeys(k for r in rows for k in r))
    cells = [[cell(r.get(c)) for c in cols] for r in rows[:limit]]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(cols)]
    out = ["  ".join(c.ljust(w) for c, w in zip(cols, widths)), "  ".join("-" * w for w in widths)]
    out += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    if len(rows) > limit:
        out.append(f"... and {len(rows) - limit} more")
    return "\n".join(out)


def md_escape(text: str) -> str:
    """Text that cannot break a markdown table or open an HTML tag."""
    return text.replace("|", "\\|").replace("<", "&lt;")


def markdown_table(rows: list[dict[str, Any]], limit: int = 50) -> str:
    """``rows`` as a markdown table (at most ``limit`` rows, then a count of the rest)."""
    cols = list(dict.fromkeys(k for r in rows for k in r))
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows[:limit]:
        out.append("| " + " | ".join(md_escape(cell(r.get(c))) for c in cols) + " |")
    if len(rows) > limit:
        out.append(f"\n… and {len(rows) - limit} more")
    return "\n".join(out)


def plan_text(plan: Any) -> str:
    """The plan as text: header, summary, objects, facts, notes/warnings/blockers, SQL, undo, how to apply."""
    lines = [f"PLAN  {plan.title}  [{plan.action.name}]"]
    lines.append(f"target {plan.target} (database {plan.database}), runbook {plan.runbook}, planned {plan.created_at}")
    lines.append("")
    lines += textwrap.wrap(plan.summary, 100) or [""]
    if plan.objects:
        lines += ["", text_table(plan.objects)]
    facts = []
    if plan.rows is not None:
        facts.append(f"rows affected: {plan.rows:,}")
    if plan.estimated_seconds is not None:
        facts.append(f"expected duration: {duration(plan.estimated_seconds)} (rough)")
    if facts:
        lines += ["", "  ".join(facts)]
    for title, items in (("Notes", plan.notes), ("Warnings", plan.warnings), ("BLOCKERS (apply will refuse)", plan.blockers)):
        if items:
            lines += ["", f"{title}:"] + [f"  - {item}" for item in items]
    if plan.statements:
        lines += ["", "SQL:"] + [textwrap.indent(s.strip(), "    ") for s in plan.statements]
    lines += ["", "Undo:", textwrap.indent((plan.undo or "none").strip(), "    ")]
    lines += ["", f"To apply: the command above the plan (plan_fingerprint {plan.fingerprint})" if plan.rerun
              else f"To apply: apply(plan, confirm={plan.confirm_text()})  -- {plan.confirm_hint}"]
    return redact("\n".join(lines))


def plan_markdown(plan: Any) -> str:
    """The plan as markdown, for notebooks and HTML reports (same content as :func:`plan_text`)."""
    md = [f"### Plan: {plan.title}", ""]
    md.append(f"**Target** `{plan.target}` (database `{plan.database}`) · runbook `{plan.runbook}` · planned {plan.created_at}")
    md += ["", plan.summary, ""]
    if plan.objects:
        md += [markdown_table(plan.objects), ""]
    if plan.rows is not None:
        md.append(f"- **Rows affected:** {plan.rows:,}")
    if plan.estimated_seconds is not None:
        md.append(f"- **Expected duration:** {duration(plan.estimated_seconds)} (rough)")
    for title, items in (("Notes", plan.notes), ("Warnings", plan.warnings), ("Blockers — apply will refuse", plan.blockers)):
        if items:
            md += ["", f"**{title}:**", ""] + [f"- {md_escape(item)}" for item in items]
    if plan.statements:
        md += ["", "**SQL:**", "", "```sql"] + [s.strip() + "\n" for s in plan.statements] + ["```"]
    md += ["", "**Undo:**", "", "```sql", (plan.undo or "-- none").strip(), "```"]
    md += ["", f"**To apply:** the command above the plan (`plan_fingerprint` `{plan.fingerprint}`)." if plan.rerun
           else f"**To apply:** set `dry_run = False` and `confirm = {plan.confirm_text()}` ({plan.confirm_hint})."]
    return redact("\n".join(md))


def result_text(result: Any) -> str:
    """The result as text: outcome, summary, objects, each verification, warnings, undo, timings, audit record."""
    lines = [f"RESULT  {result.action.name}: {result.outcome}", "", result.summary]
    if result.objects:
        lines += ["", text_table(result.objects)]
    if result.verified:
        lines += ["", "Verified:"] + [f"  [{'PASS' if v.ok else 'FAIL'}] {v.name}: {v.detail}" for v in result.verified]
    if result.warnings:
        lines += ["", "Warnings:"] + [f"  - {w}" for w in result.warnings]
    if result.undo:
        lines += ["", "Undo:", textwrap.indent(result.undo.strip(), "    ")]
    if result.timings:
        lines += ["", "Timings: " + ", ".join(f"{k} {v:.2f}s" for k, v in result.timings.items())]
    if result.audit_path:
        lines += [f"Audit record {result.audit_id} in {result.audit_path}"]
    return redact("\n".join(lines))


def verification_mark(ok: bool) -> str:
    """PASS in green or FAIL in red, as a word: readable without an emoji font or colour."""
    word, colour = ("PASS", "#1a7f37") if ok else ("FAIL", "#cf222e")
    return f'<span style="color:{colour}"><b>{word}</b></span>'


def result_markdown(result: Any) -> str:
    """The result as markdown (same content as :func:`result_text`, timings left out)."""
    md = [f"### Result: {result.action.name} — {result.outcome}", "", result.summary, ""]
    if result.objects:
        md += [markdown_table(result.objects), ""]
    if result.verified:
        md += ["**Verified:**", ""] + [
            f"- {verification_mark(v.ok)} **{v.name}**: {md_escape(v.detail)}" for v in result.verified
        ]
    if result.warnings:
        md += ["", "**Warnings:**", ""] + [f"- {md_escape(w)}" for w in result.warnings]
    if result.undo:
        md += ["", "**Undo:**", "", "```sql", result.undo.strip(), "```"]
    if result.audit_path:
        md += ["", f"Audit record `{result.audit_id}` appended to `{result.audit_path}`."]
    return redact("\n".join(md))
