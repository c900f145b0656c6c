"""HTML reports (pgrunbooks.engine.html): self-contained (plotly.js inline once, nothing fetched), code hidden by
default, failing cell shown and marked, banner on top, small enough; and the run index.
Built from notebooks assembled in the test (no kernel)."""

from __future__ import annotations

import base64
import gzip
import re

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from pgrunbooks.engine import html as report
from pgrunbooks.findings import FINDINGS_MIME, Finding
from pgrunbooks.notebook import dataframe_bundle, figure_bundle
from pgrunbooks.redact import register_secret

FINDINGS = [
    Finding("bloat.table", "critical", "table bloat", object="public.calls", value=0.61, threshold=0.4,
            detail="61% dead", remediation="vacuum (verbose) public.calls;"),
    Finding("idx.unused", "warning", "unused index", object="public.idx_x", remediation="drop index concurrently public.idx_x;"),
    Finding("conn.count", "ok", "connections", value=12, threshold=80),
]
SECRET_CODE = "SECRET_SOURCE_MARKER = 1"


def _figure():
    import plotly.graph_objects as go

    fig = go.Figure(go.Bar(x=list(range(200)), y=[i * 1.5 for i in range(200)]))
    fig.update_layout(title="dead tuples")
    return fig


def _notebook(*, failing: bool = False, charts: int = 2):
    findings_out = new_output(
        "display_data",
        data={FINDINGS_MIME: [f.to_dict() for f in FINDINGS], "text/html": report.findings_table_html(FINDINGS),
              "text/plain": report.summary_text(FINDINGS)},
    )
    cells = [
        new_markdown_cell("# A runbook\n\nWhen to use it."),
        new_code_cell(SECRET_CODE, outputs=[findings_out]),
    ]
    for _ in range(charts):
        cells.append(new_code_cell("rb.show(fig)", outputs=[new_output("display_data", data=figure_bundle(_figure()))]))
    import pandas as pd

    df = pd.DataFrame({"relname": [f"t{i}" for i in range(300)], "n_dead_tup": range(300)})
    cells.append(new_code_cell("rb.show(df)", outputs=[new_output("display_data", data=dataframe_bundle(df))]))
    if failing:
        cell = new_code_cell("raise RuntimeError('boom in the failing cell')", execution_count=7, outputs=[
            new_output("error", ename="RuntimeError", evalue="boom", traceback=["RuntimeError: boom"])
        ])
        cell.metadata["papermill"] = {"exception": True, "status": "failed"}
        cells.append(new_markdown_cell('<span id="papermill-error-cell">Execution using papermill encountered an exception here and stopped:</span>'))
        cells.append(cell)
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nbformat.from_dict(nb)


@pytest.fixture(scope="module")
def html():
    return report.export_html(_notebook(), findings=FINDINGS, title="weekly/x — A runbook",
                              meta={"target": "local"}, parameters={"limit": 5})


def test_plotly_js_is_inline_exactly_once_and_nothing_is_fetched(html):
    assert html.count("Plotly.newPlot(") == 2
    # exactly one copy of plotly.js, gzipped, and it inflates to plotly.min.js itself
    (packed,) = re.findall(r'<script[^>]*id="pgrb-plotly-js"[^>]*>([^<]*)</script>', html)
    assert gzip.decompress(base64.b64decode(packed)).decode() == report.plotly_js()
    assert not re.search(r"<script[^>]+src=", html), "no external script"
    assert not re.search(r"<link[^>]+href=\"?https?:", html), "no external stylesheet"
    rest = html.replace(packed, "")
    assert "cdn." not in rest and "require.js" not in rest and "mathjax@" not in rest.lower()


def test_report_is_under_five_megabytes(html):
    # plotly.min.js alone is 4.6 MB; gzipped inline it leaves the report well under budget
    assert len(html.encode()) < 2_500_000


def test_code_is_hidden_by_default_and_shown_on_request(html):
    assert "SECRET_SOURCE_MARKER" not in html
    shown = report.export_html(_notebook(charts=0), findings=FINDINGS, show_code=True)
    assert "SECRET_SOURCE_MARKER" in shown


def test_banner_comes_first_with_worst_severity_and_counts(html):
    body = html[html.index("<body"):]
    banner = body.index("pgrb-banner-critical")
    assert banner < body.index("When to use it.")
    assert re.search(r"<b>1</b> critical.*<b>1</b> warning.*<b>1</b> ok", body[banner:banner + 2000], re.S)


def test_findings_table_escapes_and_colours():
    table = report.findings_table_html([Finding("x", "warning", "<script>alert(1)</script>", object="a<b")])
    assert "<script>alert" not in table and "&lt;script&gt;" in table
    assert "pgrb-sev-warning" in table


def test_failing_cell_is_shown_marked_and_linked_from_the_banner():
    out = report.export_html(_notebook(failing=True, charts=0), findings=FINDINGS[:1], status="failed",
                             error="RuntimeError: boom (cell In [7])")
    assert "RUNBOOK FAILED" in out
    assert 'href="#papermill-error-cell"' in out and 'id="papermill-error-cell"' in out
    assert "celltag_pgrb-failed" in out
    assert "boom in the failing cell" in out, "the failing cell's code is shown even with code hidden"
    assert "SECRET_SOURCE_MARKER" not in out


def test_dataframe_is_truncated_and_scrollable(html):
    assert "showing 200 of 300 rows" in html
    assert "pgrb-dfwrap" in html


def test_secrets_are_redacted_from_the_html():
    register_secret("Hunter2-report-secret")
    nb = _notebook(charts=0)
    nb.cells.append(new_code_cell("x", outputs=[new_output("stream", name="stdout", text="dsn password=Hunter2-report-secret\n")]))
    out = report.export_html(nb, findings=[Finding("x", "info", "postgresql://u:Hunter2-report-secret@h/db")])
    assert "Hunter2-report-secret" not in out


def test_index_links_every_report_with_status_and_counts():
    entries = [
        report.IndexEntry("daily/health_overview", "ok", {"critical": 0, "warning": 2}, html="daily-health_overview.html", worst="warning"),
        report.IndexEntry("weekly/index_health", "failed", {}, html="weekly-index_health.html", error="ConnectError: nope"),
    ]
    page = report.index_html(entries, title="pgrunbooks suite weekly", subtitle="run 20250101T000000Z")
    assert 'href="daily-health_overview.html"' in page and 'href="weekly-index_health.html"' in page
    assert "ConnectError: nope" in page
    assert "pgrb-sev-failed" in page and "pgrb-sev-warning" in page
    assert "2 runbook(s), 1 failed" in page


def test_report_stem_is_filesystem_safe():
    assert report.report_stem("daily/health_overview") == "daily-health_overview"
    stem = report.report_stem("../x y")
    assert "/" not in stem and " " not in stem
