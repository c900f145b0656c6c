"""A run's files (pgrunbooks.engine.artifacts), from notebooks assembled in the test (no kernel):
which findings count, what each file holds, the run's index and summary."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook, new_output

from pgrunbooks.engine.artifacts import collect_findings, new_run_dir, write, write_index
from pgrunbooks.engine.catalog import load_runbook
from pgrunbooks.engine.execute import Executed
from pgrunbooks.engine.prepare import Prepared
from pgrunbooks.engine.results import ErrorInfo
from pgrunbooks.findings import ATTACHMENT_MIME, FINDINGS_MIME, Finding
from pgrunbooks.redact import register_secret

FIXTURES = Path(__file__).resolve().parents[1] / "notebooks"
SECRET = "Artifacts-secret-pw-77"


def _findings_output(*findings: Finding, as_text: bool = False):
    payload = [f.to_dict() for f in findings]
    data = {FINDINGS_MIME: json.dumps(payload) if as_text else payload, "text/plain": "findings"}
    return new_output("display_data", data=data)


def _notebook(*outputs):
    nb = new_notebook(cells=[new_code_cell("rb.record(findings)", outputs=list(outputs))])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nbformat.from_dict(nb)


def _executed(nb, *, suppress=(), error=None, kernel_text="") -> Executed:
    runbook = load_runbook(FIXTURES / "fixtures" / "findings.ipynb", FIXTURES)
    prepared = Prepared(runbook, {"limit": 3}, target="local:x", suppress=list(suppress), stem="fixtures-findings")
    return Executed(prepared, nb, error, 1.25, dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc), kernel_text)


A = Finding("a.check", "warning", "a", object="public.t")
B = Finding("b.check", "critical", "b")


def test_findings_come_from_every_record_call_once_each():
    nb = _notebook(_findings_output(A, B), _findings_output(A), _findings_output(B, as_text=True),
                   new_output("display_data", data={FINDINGS_MIME: [{"not": "a finding"}, "junk"], "text/plain": "x"}))
    assert collect_findings(nb) == [A, B]
    assert collect_findings(None) == []


def test_written_files_hold_the_redacted_notebook_report_log_and_findings(tmp_path):
    register_secret(SECRET)
    nb = _notebook(_findings_output(A, B), new_output("stream", name="stdout", text=f"password={SECRET}\n"))
    result = write(_executed(nb, suppress=["a.check:public.t"], kernel_text="kernel says hello"), tmp_path)
    assert result.status == "ok" and [f.key for f in result.findings] == ["b.check"] and result.suppressed == 1
    assert {p.name for p in tmp_path.iterdir()} == {
        "fixtures-findings.ipynb", "fixtures-findings.html", "fixtures-findings.log", "fixtures-findings.findings.json",
    }
    assert SECRET not in result.ipynb.read_text() and SECRET not in result.html.read_text()
    assert result.log.read_text() == "kernel says hello\n"
    doc = json.loads(result.findings_json.read_text())
    assert doc["started_at"] == "2025-01-02T03:04:05+00:00" and doc["target"] == "local:x"
    assert doc["files"]["html"] == "fixtures-findings.html", "paths relative to the run directory"
    assert [f["key"] for f in doc["findings"]] == ["b.check"] and doc["suppressed"] == 1


def test_a_failed_execution_is_a_failed_result_without_a_log(tmp_path):
    result = write(_executed(_notebook(), error=ErrorInfo("RuntimeError", "boom")), tmp_path)
    assert result.status == "failed" and result.log is None
    assert json.loads(result.findings_json.read_text())["error"]["ename"] == "RuntimeError"


def test_index_and_summary_list_every_runbook(tmp_path):
    run_dir = new_run_dir(tmp_path)
    results = [write(_executed(_notebook(_findings_output(B))), run_dir)]
    index = write_index(results, run_dir, title="pgrunbooks run x")
    assert 'href="fixtures-findings.html"' in index.read_text()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["run"] == run_dir.name and [r["runbook"] for r in summary["runbooks"]] == ["fixtures/findings"]
    second = new_run_dir(tmp_path)
    assert second != run_dir and second.is_dir(), "a second run in the same second gets its own directory"


def test_an_attached_document_is_written_beside_the_report_and_kept_out_of_it(tmp_path):
    register_secret(SECRET)
    attached = {ATTACHMENT_MIME: {"name": "evidence.json", "content": {"samples": 3, "dsn": f"password={SECRET}"}},
                "text/plain": "(attached evidence.json)"}
    nb = _notebook(_findings_output(B), new_output("display_data", data=attached))
    result = write(_executed(nb), tmp_path)
    evidence = tmp_path / "fixtures-findings.evidence.json"
    assert result.attachments == {"evidence.json": evidence}
    document = json.loads(evidence.read_text())
    assert document["samples"] == 3 and SECRET not in evidence.read_text()
    for saved in ("fixtures-findings.ipynb", "fixtures-findings.html"):
        assert ATTACHMENT_MIME not in (tmp_path / saved).read_text() and '"samples"' not in (tmp_path / saved).read_text()
    assert json.loads((tmp_path / "fixtures-findings.findings.json").read_text())["files"]["evidence.json"] == evidence.name
