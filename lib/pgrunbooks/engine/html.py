"""Reports: the HTML pieces a notebook displays (findings table, severity banner) and the
self-contained HTML export of an executed notebook, plus the run's ``index.html``.

The display helpers are imported by every runbook through :mod:`pgrunbooks.notebook`, so
this module's import stays light: nbconvert, plotly and jinja2 are imported inside the
export functions only.
"""

from __future__ import annotations

import base64
import datetime as _dt
import functools
import gzip
import html
import json
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from pgrunbooks.findings import FINDINGS_MIME, SEVERITY_ORDER, Finding, Severity, severity_counts, worst
from pgrunbooks.redact import redact

PLOTLY_MIME = "application/vnd.plotly.v1+json"
TEMPLATE_DIR = Path(__file__).with_name("templates")

# Foreground / background per severity: readable on white, distinguishable without colour
# (the label is always written out).
SEVERITY_COLORS: dict[str, tuple[str, str]] = {
    "critical": ("#ffffff", "#b91c1c"),
    "error": ("#ffffff", "#9a3412"),
    "warning": ("#451a03", "#fbbf24"),
    "info": ("#ffffff", "#1d4ed8"),
    "skipped": ("#ffffff", "#6b7280"),
    "ok": ("#ffffff", "#15803d"),
    "failed": ("#ffffff", "#7f1d1d"),
}

_TD = "padding:4px 8px;border-bottom:1px solid #e5e7eb;vertical-align:top;text-align:left"
_TH = "padding:4px 8px;border-bottom:2px solid #9ca3af;text-align:left;white-space:nowrap"


def redact_tree(obj: Any) -> Any:
    """``obj`` (JSON-like: dicts, lists, strings) with every string passed through :func:`redact`."""
    if isinstance(obj, str):
        return redact(obj)
    if isinstance(obj, dict):
        return {redact(k) if isinstance(k, str) else k: redact_tree(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [redact_tree(v) for v in obj]
    return obj


def _esc(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        value = json.dumps(value, default=str) if isinstance(value, (dict, list)) else str(value)
    return html.escape(redact(value))


def severity_badge(severity: "Severity | str") -> str:
    """An inline, colour-coded label (inline styles: JupyterLab strips <style> from untrusted output)."""
    name = str(severity)
    fg, bg = SEVERITY_COLORS.get(name, ("#111827", "#e5e7eb"))
    return (
        f'<span class="pgrb-sev pgrb-sev-{html.escape(name)}" style="display:inline-block;padding:1px 8px;'
        f'border-radius:9px;font-weight:600;font-size:0.85em;color:{fg};background:{bg}">{html.escape(name)}</span>'
    )


def findings_table_html(findings: Sequence[Finding], *, suppressed: int = 0) -> str:
    """The findings as an HTML table: worst first, severity coloured, with remediation."""
    findings = sorted(findings, key=lambda f: (-f.severity.rank, f.check_id, f.object))
    note = f'<p style="margin:4px 0;color:#6b7280">{suppressed} suppressed by params.</p>' if suppressed else ""
    if not findings:
        return f'<div class="pgrb-findings"><p style="margin:4px 0">No findings.</p>{note}</div>'
    head = "".join(
        f'<th style="{_TH}">{h}</th>'
        # no object column: the key under each title (check_id:object) names it already
        for h in ("severity", "finding", "value", "threshold", "detail", "remediation")
    )
    rows = []
    for f in findings:
        remediation = f"<pre style=\"white-space:pre-wrap;margin:0;font-size:0.9em\">{_esc(f.remediation)}</pre>" if f.remediation else ""
        rows.append(
            "<tr>"
            f'<td style="{_TD}">{severity_badge(f.severity)}</td>'
            f'<td style="{_TD};min-width:12em"><b>{_esc(f.title)}</b><br><code style="font-size:0.8em;color:#6b7280;overflow-wrap:anywhere">{_esc(f.key)}</code></td>'
            f'<td style="{_TD};min-width:5em;overflow-wrap:anywhere">{_esc(f.value)}</td>'
            f'<td style="{_TD}">{_esc(f.threshold)}</td>'
            f'<td style="{_TD};min-width:12em">{_esc(f.detail)}</td>'
            f'<td style="{_TD};min-width:18em">{remediation}</td>'
            "</tr>"
        )
    return (
        '<div class="pgrb-findings" style="overflow-x:auto;max-width:100%">'
        '<table class="pgrb-table" style="border-collapse:collapse;width:100%;font-size:0.92em">'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>{note}</div>"
    )


def counts_text(counts: dict[str, int]) -> str:
    """``2 critical, 1 warning`` (non-zero counts only; ``no findings`` when empty)."""
    parts = [f"{n} {sev}" for sev, n in counts.items() if n]
    return ", ".join(parts) if parts else "no findings"


def sum_counts(counts: Iterable[dict[str, int]]) -> dict[str, int]:
    """Several runbooks' counts per severity added up (for a run's totals)."""
    total: dict[str, int] = {}
    for one in counts:
        for sev, n in one.items():
            total[sev] = total.get(sev, 0) + n
    return total


def summary_text(findings: Sequence[Finding], *, suppressed: int = 0) -> str:
    """Plain-text findings summary (the ``text/plain`` part of a findings output)."""
    lines = [f"findings: {counts_text(severity_counts(findings))} (worst: {worst(findings)})"]
    for f in sorted(findings, key=lambda f: (-f.severity.rank, f.check_id, f.object)):
        lines.append(f"  [{f.severity}] {f.key}: {f.title}" + (f" = {f.value}" if f.value is not None else ""))
    if suppressed:
        lines.append(f"  ({suppressed} suppressed by params)")
    return redact("\n".join(lines))


def banner_html(findings: Sequence[Finding], *, title: str = "", status: str | None = None, error: str | None = None) -> str:
    """A full-width banner: worst severity (or ``failed``), counts per severity, optional title/error."""
    level = "failed" if status == "failed" else worst(findings).value
    fg, bg = SEVERITY_COLORS.get(level, ("#111827", "#e5e7eb"))
    counts = severity_counts(findings)
    chips = " ".join(
        f'<span style="margin-right:12px;white-space:nowrap"><b>{n}</b> {sev}</span>' for sev, n in counts.items() if n
    ) or "no findings"
    heading = "runbook failed" if level == "failed" else ("all clear" if level == "ok" else level)
    parts = [
        f'<div class="pgrb-banner pgrb-banner-{level}" style="padding:10px 16px;margin:8px 0;border-radius:6px;'
        f'color:{fg};background:{bg};font-family:system-ui,sans-serif">',
        f'<div style="font-size:1.25em;font-weight:700">{html.escape(heading.upper())}'
        + (f' <span style="font-weight:400">· {_esc(title)}</span>' if title else "")
        + "</div>",
        f'<div style="margin-top:4px">{chips}</div>',
    ]
    if error:
        parts.append(f'<div style="margin-top:6px"><a href="#papermill-error-cell" style="color:{fg}">{_esc(error)}</a></div>')
    parts.append("</div>")
    return "".join(parts)


# --------------------------------------------------------------------------------------
# HTML export of an executed notebook
# --------------------------------------------------------------------------------------
_PLOTLY_JS_CACHE: list[str] = []


def plotly_js() -> str:
    """plotly.js, minified (read once per process)."""
    if not _PLOTLY_JS_CACHE:
        from plotly.offline import get_plotlyjs

        _PLOTLY_JS_CACHE.append(get_plotlyjs())
    return _PLOTLY_JS_CACHE[0]


@functools.cache
def plotly_js_payload() -> str:
    """plotly.js gzipped and base64-encoded, as reports embed it.

    4.6 MB of plotly.min.js becomes 1.9 MB: a report with a few charts stays around 2 MB
    instead of 5, small enough to mail. The page inflates it with the browser's own
    ``DecompressionStream`` (no library, no network) and draws the charts once it runs.
    ``mtime=0`` keeps the bytes, and so the reports, identical from run to run.
    """
    return base64.b64encode(gzip.compress(plotly_js().encode("utf-8"), compresslevel=6, mtime=0)).decode("ascii")


def _plotly_output_html(fig: dict, div_id: str) -> str:
    data = json.dumps(fig.get("data", []))
    layout = json.dumps(fig.get("layout", {}))
    config = json.dumps({"responsive": True, "displaylogo": False, **fig.get("config", {})})
    # "</" inside JSON would close the script element early.
    data, layout, config = (s.replace("</", "<\\/") for s in (data, layout, config))
    # pgrbPlot (defined in the report's head) draws now if plotly.js is ready, else queues.
    return (
        f'<div id="{div_id}" class="pgrb-plot" style="width:100%;min-height:360px"></div>'
        f'<script>pgrbPlot(function(){{Plotly.newPlot(document.getElementById("{div_id}"),'
        f'{data},{layout},{config});}});</script>'
    )


def _prepare_for_html(nb, *, show_code: bool) -> tuple[Any, bool]:
    """A copy of ``nb`` ready for nbconvert: plotly outputs turned into HTML, code hidden
    (except the failing cell's) unless ``show_code``. Returns (notebook, has_plotly)."""
    import copy

    nb = copy.deepcopy(nb)
    has_plotly = False
    counter = 0
    for cell in nb.cells:
        meta = cell.setdefault("metadata", {})
        tags = meta.setdefault("tags", [])
        failed = bool(meta.get("papermill", {}).get("exception"))
        if failed:
            tags.append("pgrb-failed")
        if cell.cell_type != "code":
            continue
        if not show_code and not failed:
            meta.setdefault("transient", {})["remove_source"] = True
            if not cell.get("outputs"):
                tags.append("pgrb-hidden")
        for out in cell.get("outputs", []):
            data = out.get("data") if out.get("output_type") in ("display_data", "execute_result") else None
            if not data:
                continue
            if PLOTLY_MIME in data:
                counter += 1
                has_plotly = True
                fig = data.pop(PLOTLY_MIME)
                if isinstance(fig, str):
                    fig = json.loads(fig)
                data["text/html"] = _plotly_output_html(fig, f"pgrb-plot-{counter}")
                data.pop("text/plain", None)
            data.pop(FINDINGS_MIME, None)
    return nb, has_plotly


def meta_html(items: dict[str, Any], parameters: dict[str, Any] | None = None) -> str:
    """The small block under the banner: run facts and the parameters used."""
    rows = "".join(f"<tr><td>{_esc(k)}</td><td><b>{_esc(v)}</b></td></tr>" for k, v in items.items() if v not in (None, ""))
    params = ""
    if parameters:
        prow = "".join(
            f"<tr><td><code>{_esc(k)}</code></td><td><code>{_esc(json.dumps(v, default=str))}</code></td></tr>"
            for k, v in parameters.items()
        )
        params = f"<details><summary>parameters ({len(parameters)})</summary><table>{prow}</table></details>"
    return f'<div class="pgrb-meta"><table>{rows}</table>{params}</div>'


_TEMPLATE_CACHE: dict[str, str] = {}


def _template_text(name: str) -> str:
    if name not in _TEMPLATE_CACHE:
        _TEMPLATE_CACHE[name] = (TEMPLATE_DIR / name).read_text()
    return _TEMPLATE_CACHE[name]


def export_html(
    nb,
    *,
    findings: Sequence[Finding] = (),
    title: str = "",
    status: str = "ok",
    error: str | None = None,
    show_code: bool = False,
    meta: dict[str, Any] | None = None,
    parameters: dict[str, Any] | None = None,
) -> str:
    """Self-contained HTML for an executed notebook: severity banner on top, plotly.js
    inline once (no CDN, no MathJax, no require.js), code hidden unless ``show_code``
    (the failing cell's code is always shown, marked, and linked from the banner)."""
    prepared, has_plotly = _prepare_for_html(nb, show_code=show_code)
    resources = {
        "metadata": {"name": title or "pgrunbooks report"},
        "pgrb": {
            "title": title or "pgrunbooks report",
            "banner": banner_html(findings, title=title, status=status, error=error),
            "meta": meta_html(meta or {}, parameters),
            "css": _template_text("report.css"),
            # plotly.js (no secrets) goes in after redaction: redacting 1.9 MB of base64
            # would cost more than the rest of the report.
            "plotly_js": _PLOTLY_PLACEHOLDER if has_plotly else "",
            "footer": "pgrunbooks report · self-contained: opens offline",
        },
    }
    with _EXPORTER_LOCK:  # an exporter is not thread-safe; an export takes milliseconds
        body, _ = _exporter().from_notebook_node(prepared, resources=resources)
    body = redact(body)
    if has_plotly:
        body = body.replace(_PLOTLY_PLACEHOLDER, plotly_js_payload(), 1)
    return body


_PLOTLY_PLACEHOLDER = "/*pgrunbooks:plotly.js*/"
_EXPORTER_LOCK = threading.RLock()
_EXPORTER: list[Any] = []


def _exporter():
    """The one HTMLExporter of the process (its compiled templates are reused); callers hold
    ``_EXPORTER_LOCK``."""
    with _EXPORTER_LOCK:
        if not _EXPORTER:
            from jinja2 import DictLoader
            from nbconvert import HTMLExporter

            _EXPORTER.append(HTMLExporter(
                template_name="lab",
                template_file="pgrunbooks_report.html.j2",
                extra_loaders=[DictLoader({"pgrunbooks_report.html.j2": _template_text("report.html")})],
                exclude_input_prompt=True,
                exclude_output_prompt=True,
            ))
        return _EXPORTER[0]


def warm_up() -> None:
    """Pay the first report's one-off costs now: importing nbconvert, compiling the
    templates, packing plotly.js (about a second in all on a small machine).

    :func:`~pgrunbooks.engine.run.run_all` calls it in a background thread while the first
    kernel starts, when this process has nothing else to do; the first report is then as
    fast as the others.
    """
    import nbformat

    plotly_js_payload()
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_markdown_cell("warm-up"))
    export_html(nb)


# --------------------------------------------------------------------------------------
# The run's index page
# --------------------------------------------------------------------------------------
#: the severities a DBA should look at first (the index's and the console's "look at first" list)
ATTENTION = (Severity.CRITICAL, Severity.ERROR, Severity.WARNING)


def run_status_word(status: str) -> str:
    """How a runbook's run status reads in the index and the console: ``ran`` or ``FAILED``,
    words that cannot be mistaken for a severity (``ok``, ``critical``…)."""
    return "FAILED" if status == "failed" else "ran"


def worst_findings(by_runbook: Iterable[tuple[str, Sequence[Finding]]]) -> list[tuple[str, Finding]]:
    """``(runbook, finding)`` for every critical, error and warning finding, worst first."""
    found = [(name, f) for name, findings in by_runbook for f in findings if f.severity in ATTENTION]
    return sorted(found, key=lambda nf: (-nf[1].severity.rank, nf[0], nf[1].key))


@dataclass
class IndexEntry:
    """One runbook's line in a run's ``index.html``."""

    name: str
    status: str
    counts: dict[str, int] = field(default_factory=dict)
    html: str | None = None
    ipynb: str | None = None
    findings: str | None = None
    error: str | None = None
    seconds: float | None = None
    worst: str = "ok"
    #: its findings, for the page's "look at first" list (only warning and worse are shown)
    worst_findings: Sequence[Finding] = ()


def _attention_html(entries: Sequence[IndexEntry]) -> str:
    """The worst findings of the whole run (runbook, key, title), above the runbook table."""
    links = {e.name: e.html for e in entries}
    found = worst_findings((e.name, e.worst_findings) for e in entries)
    if not found:
        return '<h2>Look at first</h2><p class="pgrb-attention">No critical, error or warning findings.</p>'
    rows = []
    for name, f in found:
        runbook = f'<a href="{html.escape(links[name])}">{_esc(name)}</a>' if links.get(name) else _esc(name)
        rows.append(f"<tr><td>{severity_badge(f.severity)}</td><td>{runbook}</td>"
                    f"<td><code>{_esc(f.key)}</code></td><td>{_esc(f.title)}</td></tr>")
    return (
        f'<h2>Look at first</h2><div class="wrap"><table class="pgrb-attention"><thead><tr><th>severity</th>'
        f"<th>runbook</th><th>key</th><th>finding</th></tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


def when_text(iso: Any) -> str:
    """An ISO timestamp as the index and the console show it (``2026-12-02 01:02:03 UTC``); as
    given if unparsable."""
    try:
        moment = _dt.datetime.fromisoformat(str(iso))
    except ValueError:
        return str(iso or "unknown time")
    if moment.tzinfo is not None:
        moment = moment.astimezone(_dt.timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _diff_rows(entries: Sequence[Any]) -> str:
    return "".join(
        f"<tr><td>{severity_badge(e.severity)}</td><td><code>{_esc(e.key)}</code></td><td>{_esc(e.title)}</td></tr>"
        for e in entries
    )


def since_previous_html(diff: Any) -> str:
    """What changed since the previous run of the same suite and target (a
    :class:`~pgrunbooks.history.diff.RunDiff`): the new problems listed worst first, the
    resolved ones listed, how many are still open. Empty without a diff."""
    if diff is None:
        return ""
    if diff.previous is None:
        heading = "First run of this suite on this target"
        lead = "No previous run to compare with: " + (f"{len(diff.new)} problem(s), all new." if diff.new else "no problem found.")
    else:
        heading = f"Since the previous run ({when_text(diff.previous.get('started_at'))})"
        lead = (f"{len(diff.new)} new, {len(diff.resolved)} resolved, {len(diff.open)} still open"
                + (f", {len(diff.unchecked)} not re-checked (their runbook failed)" if diff.unchecked else "") + ".")
    parts = [f'<div class="pgrb-since"><h2>{_esc(heading)}</h2><p>{_esc(lead)}</p>']
    for label, css, entries in (("New", "pgrb-new", diff.new), ("Resolved", "pgrb-resolved", diff.resolved)):
        if entries:
            parts.append(f'<h3>{label} ({len(entries)})</h3><div class="wrap"><table class="{css}"><thead><tr>'
                         f"<th>severity</th><th>key</th><th>finding</th></tr></thead><tbody>{_diff_rows(entries)}</tbody></table></div>")
    parts.append("</div>")
    return "".join(parts)


def index_html(entries: Iterable[IndexEntry], *, title: str, subtitle: str = "", diff: Any = None) -> str:
    """The run's ``index.html``: what changed since the previous run (``diff``, a
    :class:`~pgrunbooks.history.diff.RunDiff`), then one row per runbook with its status,
    counts and links."""
    entries = list(entries)
    sev_names = [s.value for s in SEVERITY_ORDER]
    head = "".join(f"<th>{h}</th>" for h in ["runbook", "status", "worst", *sev_names, "time", "files"])
    rows = []
    for e in entries:
        word = run_status_word(e.status)
        status = (f'<b class="pgrb-run-failed" style="color:{SEVERITY_COLORS["failed"][1]}">{word}</b>'
                  if e.status == "failed" else word)
        level = "failed" if e.status == "failed" else e.worst
        links = " · ".join(
            f'<a href="{html.escape(p)}">{label}</a>'
            for label, p in (("report", e.html), ("notebook", e.ipynb), ("findings", e.findings))
            if p
        )
        cells = "".join(
            f'<td class="num">{e.counts.get(s, 0) or ""}</td>' for s in sev_names
        )
        name = f'<a href="{html.escape(e.html)}">{_esc(e.name)}</a>' if e.html else _esc(e.name)
        err = f'<div class="err">{_esc(e.error)}</div>' if e.error else ""
        secs = f"{e.seconds:.1f}s" if e.seconds is not None else ""
        rows.append(f"<tr><td>{name}{err}</td><td>{status}</td><td>{severity_badge(level)}</td>{cells}"
                    f"<td class=num>{secs}</td><td>{links}</td></tr>")
    failed = sum(e.status == "failed" for e in entries)
    summary = f"{len(entries)} runbook(s), {failed} failed; findings: {counts_text(sum_counts(e.counts for e in entries))}"
    level = "failed" if failed else max(
        (Severity.parse(e.worst) for e in entries), key=lambda s: s.rank, default=Severity.OK
    ).value
    fg, bg = SEVERITY_COLORS.get(level, ("#111827", "#e5e7eb"))
    heading = "runbook failed" if level == "failed" else ("all clear" if level == "ok" else level)
    banner = (
        f'<div class="pgrb-banner pgrb-banner-{level}" style="padding:10px 16px;margin:8px 0 16px;border-radius:6px;'
        f'color:{fg};background:{bg}"><div style="font-size:1.2em;font-weight:700">{html.escape(heading.upper())}</div>'
        f"<div>{_esc(summary)}</div></div>"
    )
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_esc(title)}</title>
<style>
body {{ font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; font-size: 16px; line-height: 1.45;
       color: #111827; max-width: 1100px; margin: 24px auto; padding: 0 16px; }}
h1 {{ font-size: 1.5em; margin-bottom: 4px; }}
h2 {{ font-size: 1.15em; margin: 18px 0 6px; }}
h3 {{ font-size: 1em; margin: 10px 0 4px; }}
.sub {{ color: #6b7280; margin-top: 0; }}
.wrap {{ overflow-x: auto; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ padding: 6px 10px; border-bottom: 1px solid #e5e7eb; text-align: left; vertical-align: top; }}
th {{ border-bottom: 2px solid #9ca3af; white-space: nowrap; }}
td.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
td:last-child {{ white-space: nowrap; }}
.err {{ color: #991b1b; font-size: 0.9em; margin-top: 2px; }}
a {{ color: #1d4ed8; }}
</style></head><body>
<h1>{_esc(title)}</h1>
<p class="sub">{_esc(subtitle)}</p>
{banner}
{since_previous_html(diff)}
{_attention_html(entries)}
<h2>Runbooks</h2>
<div class="wrap"><table><thead><tr>{head}</tr></thead><tbody>
{''.join(rows)}
</tbody></table></div>
</body></html>
"""
    return redact(page)


_SLUG = re.compile(r"[^A-Za-z0-9_.-]+")


def report_stem(runbook: str) -> str:
    """File stem for a runbook's artifacts: ``daily/health_overview`` -> ``daily-health_overview``."""
    return _SLUG.sub("-", runbook.replace("/", "-")).strip("-") or "runbook"


def fallback_html(name: str, findings: Sequence[Finding], status: str, error: str | None, problem: str) -> str:
    """A minimal report when nbconvert itself fails: banner, findings, and what went wrong."""
    return redact(
        f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{_esc(name)}</title></head>
<body style="font-family:system-ui,sans-serif;max-width:1100px;margin:16px auto;padding:0 16px">
{banner_html(findings, title=name, status=status, error=error)}
<p style="color:#991b1b">{_esc(problem)}; the executed notebook (.ipynb) next to this file has every output.</p>
{findings_table_html(list(findings))}
</body></html>
"""
    )
