"""``pgrunbooks run`` end to end on the fixture notebooks in tests/notebooks/, against the
real test servers: the files of a run, its findings, its console summary, its exit code.

Kernel starts cost about a second each, so the executed run is shared through a
module-scoped fixture. The end-to-end run runs on every server version.
"""

from __future__ import annotations

import json
import re
import time

import pytest

from clihelpers import cli_env, run_cli, run_dir_of

INJECTION = "x'); drop table public.canary; --"


def canary_rows(pg, db: str) -> int:
    with pg.connect(db) as conn:
        return conn.execute("select count(*) from public.canary").fetchone()[0]


@pytest.fixture(scope="module")
def e2e(pg, runbook_db, tmp_path_factory):  # noqa: F811 - the imported fixture
    out = tmp_path_factory.mktemp("reports")
    args = [
        "run", "fixtures/findings", "--target", f"local:{runbook_db}", "--out", str(out),
        "-p", "severities=[critical, warning, ok, info]", "-p", "limit=3", "-p", f"label={INJECTION}",
        "-p", "suppress=[\"fixture.sev3:obj3\", \"x'; drop table public.canary; --\"]",
    ]
    started = time.monotonic()
    proc = run_cli(args, cli_env(pg), cwd=out)
    return {"proc": proc, "out": out, "run": run_dir_of(out), "seconds": time.monotonic() - started}


def test_run_writes_notebook_html_findings_and_index(e2e):
    run = e2e["run"]
    assert re.fullmatch(r"\d{8}T\d{6}Z", run.name), "a UTC timestamp"
    names = sorted(p.name for p in run.iterdir())
    for expected in ("fixtures-findings.ipynb", "fixtures-findings.html", "fixtures-findings.findings.json", "index.html"):
        assert expected in names, names
    assert 'href="fixtures-findings.html"' in (run / "index.html").read_text()


def test_run_exits_1_on_findings_at_or_above_fail_on(e2e):
    assert e2e["proc"].returncode == 1, e2e["proc"].stderr


def test_findings_are_collected_from_every_record_call_with_suppression(e2e):
    doc = json.loads((e2e["run"] / "fixtures-findings.findings.json").read_text())
    assert doc["status"] == "ok" and doc["worst"] == "critical"
    keys = {f["key"]: f["severity"] for f in doc["findings"]}
    assert keys == {
        "fixture.sev0:obj0": "critical",
        "fixture.sev1:obj1": "warning",
        "fixture.sev2:obj2": "ok",
        "fixture.role:postgres": "info",  # from the second record() call
    }
    assert doc["counts"]["critical"] == 1 and doc["suppressed"] == 0  # suppressed in the notebook itself
    assert doc["parameters"]["limit"] == 3


def test_console_summary_names_runbook_status_counts_and_report(e2e):
    out = e2e["proc"].stdout
    assert re.search(r"fixtures/findings\s+ran\s+1\s+0\s+1\s+1\s+0\s+1\s+[\d.]+s\s+\S+fixtures-findings\.html", out), out
    assert "reports:" in out and "index.html" in out
    assert "Traceback" not in e2e["proc"].stderr


def test_html_report_is_self_contained_with_banner_and_hidden_code(e2e):
    html = (e2e["run"] / "fixtures-findings.html").read_text()
    assert len(html.encode()) < 5_000_000
    assert html.count("Plotly.newPlot(") == 1 and html.count('id="pgrb-plotly-js"') == 1
    assert not re.search(r"<script[^>]+src=", html)
    assert "pgrb-banner-critical" in html
    assert "rb.start(" not in html, "code cells are hidden by default"


def test_executed_notebook_is_small_and_records_the_parameters(e2e):
    path = e2e["run"] / "fixtures-findings.ipynb"
    assert path.stat().st_size < 1_000_000
    nb = json.loads(path.read_text())
    sources = ["".join(c["source"]) for c in nb["cells"]]
    assert any("limit = 3" in s for s in sources), "papermill's injected-parameters cell"
    mimes = {k for c in nb["cells"] for o in c.get("outputs", []) for k in o.get("data", {})}
    assert "application/vnd.plotly.v1+json" in mimes and "application/vnd.pgrunbooks.findings+json" in mimes


def test_injection_text_in_parameters_changes_nothing(e2e, pg, runbook_db):  # noqa: F811
    assert canary_rows(pg, runbook_db) == 1
    doc = json.loads((e2e["run"] / "fixtures-findings.findings.json").read_text())
    assert {f["detail"] for f in doc["findings"] if f["check_id"].startswith("fixture.sev")} == {INJECTION}
