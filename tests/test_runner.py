"""The runbook engine end to end: ``pgrunbooks run`` / ``suite`` / ``list`` on the fixture
notebooks in tests/notebooks/, against the real test servers.

Kernel starts cost about a second each, so executed results are shared through
module-scoped fixtures, and version-independent kernel tests run on the first server only.
The end-to-end run itself runs on every server version.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from pgrunbooks import cli, runner
from pgrunbooks.findings import Finding

from clihelpers import FIXTURES, PROJECT, cli_env, make_runbook_db, run_cli, run_dir_of  # noqa: F401

INJECTION = "x'); drop table public.canary; --"


def canary_rows(pg, db: str) -> int:
    with pg.connect(db) as conn:
        return conn.execute("select count(*) from public.canary").fetchone()[0]


@pytest.fixture(scope="module")
def runbook_db(pg):
    name = make_runbook_db(pg)
    yield name
    pg.drop_database(name)


# --------------------------------------------------------------------------------------
# run: end to end (every server version)
# --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def e2e(pg, runbook_db, tmp_path_factory):
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
    assert re.search(r"fixtures/findings\s+ok\s+1\s+0\s+1\s+1\s+0\s+1\s+[\d.]+s\s+\S+fixtures-findings\.html", out), out
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


def test_injection_text_in_parameters_changes_nothing(e2e, pg, runbook_db):
    assert canary_rows(pg, runbook_db) == 1
    doc = json.loads((e2e["run"] / "fixtures-findings.findings.json").read_text())
    assert {f["detail"] for f in doc["findings"] if f["check_id"].startswith("fixture.sev")} == {INJECTION}


# --------------------------------------------------------------------------------------
# failures (first server only)
# --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def failing(pg, runbook_db, tmp_path_factory, first_server):
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


def test_cell_timeout_interrupts_and_marks_the_cell(first_pg, runbook_db, tmp_path):
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


# --------------------------------------------------------------------------------------
# bad usage: exit 3 before any kernel or connection (in-process, no kernel)
# --------------------------------------------------------------------------------------
@pytest.fixture
def in_process(first_pg, monkeypatch, tmp_path):
    pg = first_pg
    monkeypatch.setenv("PGRUNBOOKS_HOME", str(pg.home))
    monkeypatch.setenv("PGRUNBOOKS_RUNBOOKS", str(FIXTURES))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def hang_dsn(monkeypatch):
    from test_targets import HangServer

    server = HangServer()
    monkeypatch.setenv("PGRB_HANG_DSN", server.dsn(timeout=2))
    yield server
    server.close()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["-p", "limt=3"], "unknown parameter 'limt' (did you mean limit?)"),
        (["-p", "limit=abc"], "'limit' must be an int"),
        (["-p", "with_chart=maybe"], "'with_chart' must be a bool"),
    ],
)
def test_bad_parameters_exit_3_without_connecting(in_process, hang_dsn, capsys, extra, message):
    started = time.monotonic()
    code = cli.main(["run", "fixtures/findings", "--target", "env:PGRB_HANG_DSN", "--out", str(in_process), *extra])
    assert code == 3
    assert message in capsys.readouterr().err
    assert time.monotonic() - started < 2, "nothing waited on the unreachable server"
    assert hang_dsn.accepted == 0, "no connection was attempted"
    assert not list(in_process.glob("*/")), "no run directory"


def test_missing_required_parameter_exits_3(in_process, capsys):
    assert cli.main(["run", "fixtures/required", "--out", str(in_process)]) == 3
    assert "parameter 'tenant' is required" in capsys.readouterr().err


def _sessions(conn) -> int:
    """Sessions ever established to this database (pg_stat_database.sessions, PG 14+)."""
    conn.execute("select pg_catalog.pg_stat_clear_snapshot()")
    return conn.execute(
        "select sessions from pg_catalog.pg_stat_database where datname = pg_catalog.current_database()"
    ).fetchone()[0]


def _sessions_settled(conn, expected_at_least: int, wait: float = 5.0) -> int:
    deadline = time.monotonic() + wait
    value = _sessions(conn)
    while value < expected_at_least and time.monotonic() < deadline:
        time.sleep(0.1)
        value = _sessions(conn)
    return value


def test_no_session_is_opened_for_bad_parameters(pg, runbook_db, in_process):
    import psycopg

    with pg.connect(runbook_db) as watcher:
        start = _sessions(watcher)
        psycopg.connect(pg.conninfo(runbook_db)).close()  # control: one session is counted
        control = _sessions_settled(watcher, start + 1)
        assert control == start + 1
        assert cli.main(["run", "findings", "--target", f"local:{runbook_db}", "-p", "ratio=fast"]) == 3
        time.sleep(1.0)
        assert _sessions(watcher) == control, "the bad run opened no session"


@pytest.mark.parametrize(
    "target, message",
    [
        ("local; drop table x", "unknown target"),
        ("service:victorysync-nope", "no libpq service named"),
        ("postgresql://u:pw-in-target@h/db", "must not carry a password"),
        ("env:PGRB_NOT_SET", "PGRB_NOT_SET is not set"),
    ],
)
def test_bad_targets_exit_3_before_the_kernel(in_process, capsys, monkeypatch, target, message):
    monkeypatch.setenv("PGSERVICEFILE", str(in_process / "none.conf"))
    monkeypatch.delenv("PGRB_NOT_SET", raising=False)
    assert cli.main(["run", "fixtures/findings", "-p", f"target={target}"]) == 3
    err = capsys.readouterr().err
    assert message in err and "pw-in-target" not in err


def test_unknown_runbook_lists_close_matches(in_process, capsys):
    assert cli.main(["run", "fixtures/findngs"]) == 3
    err = capsys.readouterr().err
    assert "unknown runbook 'fixtures/findngs'" in err and "did you mean: fixtures/findings" in err
    assert cli.main(["run", "nonexistent_thing"]) == 3


def test_list_shows_group_title_purpose_and_mutates(in_process, capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"fixtures\s+fixtures/required\s+yes\s+Required parameter\s+Test fixture", out), out
    assert re.search(r"fixtures\s+fixtures/findings\s+no\s+Findings with a chart", out)
    assert cli.main(["list", "--json"]) == 0
    items = json.loads(capsys.readouterr().out)
    assert {i["name"] for i in items} >= {"fixtures/findings", "fixtures/failing", "fixtures/empty"}


def test_runbooks_directory_is_found_from_the_project(monkeypatch, tmp_path):
    monkeypatch.delenv("PGRUNBOOKS_RUNBOOKS", raising=False)
    monkeypatch.chdir(tmp_path)  # outside the project: the editable install's checkout
    assert runner.runbooks_dir() == PROJECT / "runbooks"
    monkeypatch.chdir(PROJECT / "lib")
    assert runner.runbooks_dir() == PROJECT / "runbooks"


# --------------------------------------------------------------------------------------
# exit codes (no kernel)
# --------------------------------------------------------------------------------------
def _result(status="ok", *severities):
    return runner.RunResult("g/n", "t", status, [Finding(f"c{i}", s, "x") for i, s in enumerate(severities)])


@pytest.mark.parametrize(
    "results, fail_on, code",
    [
        ([_result("ok", "ok", "info")], "critical", 0),
        ([_result("ok", "warning")], "critical", 0),
        ([_result("ok", "warning")], "warning", 1),
        ([_result("ok", "critical")], "critical", 1),
        ([_result("ok", "critical")], "none", 0),
        ([_result("ok", "skipped")], "info", 0),
        ([_result("ok", "critical"), _result("failed")], "critical", 2),
        ([_result("failed")], "none", 2),
    ],
)
def test_exit_codes(results, fail_on, code):
    assert runner.exit_code(results, fail_on) == code


def test_fail_on_rejects_unknown_levels():
    from pgrunbooks.errors import UsageError

    with pytest.raises(UsageError):
        runner.parse_fail_on("severe")
    assert runner.parse_fail_on("WARNING") == "warning" and runner.parse_fail_on("none") == "none"
