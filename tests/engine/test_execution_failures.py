"""A runbook that fails or runs out of time: exit 2, its files still written, the failing
cell marked in the notebook and the report (pgrunbooks.engine.execute). First server only:
the failure handling does not depend on the server version."""

from __future__ import annotations

import json
import time

import pytest

from clihelpers import cli_env, run_cli, run_dir_of


@pytest.fixture(scope="module")
def failing(pg, runbook_db, tmp_path_factory, first_server):  # noqa: F811 - the imported fixture
    first_server(pg)
    out = tmp_path_factory.mktemp("failing")
    proc = run_cli(["run", "failing", "--target", f"local:{runbook_db}", "--out", str(out), "--fail-on", "none"], cli_env(pg), cwd=out)
    return {"proc": proc, "run": run_dir_of(out)}


def test_failing_runbook_exits_2_and_still_writes_its_reports(failing):
    assert failing["proc"].returncode == 2
    for suffix in (".ipynb", ".html", ".findings.json"):
        assert (failing["run"] / f"fixtures-failing{suffix}").is_file()
    assert "fixtures/failing: FAILED — RuntimeError: planted failure in the fixture (cell In [" in failing["proc"].stdout
    assert "Traceback" not in failing["proc"].stderr


def test_failing_cell_is_marked_in_notebook_and_html(failing):
    nb = json.loads((failing["run"] / "fixtures-failing.ipynb").read_text())
    marked = [c for c in nb["cells"] if c.get("metadata", {}).get("papermill", {}).get("exception")]
    assert len(marked) == 1 and "planted failure" in "".join(marked[0]["source"])
    html = (failing["run"] / "fixtures-failing.html").read_text()
    assert 'id="papermill-error-cell"' in html and "celltag_pgrb-failed" in html
    assert "RUNBOOK FAILED" in html and "planted failure in the fixture" in html
    doc = json.loads((failing["run"] / "fixtures-failing.findings.json").read_text())
    assert doc["status"] == "failed" and doc["error"]["ename"] == "RuntimeError"
    assert [f["check_id"] for f in doc["findings"]] == ["fixture.before"], "findings before the failure are kept"


def test_cell_timeout_interrupts_and_marks_the_cell(first_pg, runbook_db, tmp_path):  # noqa: F811
    pg = first_pg
    started = time.monotonic()
    proc = run_cli(
        ["run", "fixtures/failing", "--target", f"local:{runbook_db}", "--out", str(tmp_path), "-p", "sleep_s=60", "--cell-timeout", "2"],
        cli_env(pg), cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert time.monotonic() - started < 30
    assert "TimeoutError: the cell did not finish within its time limit (per cell 2s" in proc.stdout
    html = (run_dir_of(tmp_path) / "fixtures-failing.html").read_text()
    assert "celltag_pgrb-failed" in html and "pg_sleep" in html


def test_a_kernel_that_dies_marks_the_cell_it_died_in(first_pg, tmp_path):
    """kill -9 of the kernel in the third cell: exit 2, and the report marks that cell (not the
    parameters cell, not the first one) with the dead-kernel error."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    books = tmp_path / "runbooks" / "drill"
    books.mkdir(parents=True)
    nb = new_notebook(cells=[
        new_markdown_cell("# Dying kernel"),
        new_code_cell('target = "local"  # unused', metadata={"tags": ["parameters"]}),
        new_code_cell("x = 1"),
        new_code_cell("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)  # the kernel dies here"),
        new_code_cell("print('never')"),
    ])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(books / "dying.ipynb"))
    out = tmp_path / "out"
    proc = run_cli(["run", "drill/dying", "--out", str(out), "--fail-on", "none"],
                   dict(cli_env(first_pg), PGRUNBOOKS_RUNBOOKS=str(tmp_path / "runbooks")), cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    done = json.loads((run_dir_of(out) / "drill-dying.ipynb").read_text())
    marked = [c for c in done["cells"] if c.get("metadata", {}).get("papermill", {}).get("exception")]
    assert len(marked) == 1, [c["source"] for c in marked]
    assert "the kernel dies here" in "".join(marked[0]["source"])
    assert any(o.get("output_type") == "error" for o in marked[0].get("outputs", []))
