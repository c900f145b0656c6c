"""What a DBA reads first after a run: the index's "look at first" list and the console's words.

A suite of two fixture runbooks (one with a critical and a warning finding, one that fails),
run by the real CLI; version-independent, so it runs on the first server only.
"""

from __future__ import annotations

import pytest

from clihelpers import cli_env, run_cli, run_dir_of


@pytest.fixture(scope="module")
def mixed_suite(pg, runbook_db, tmp_path_factory, first_server):  # noqa: F811 - the imported fixture
    first_server(pg)
    out = tmp_path_factory.mktemp("index")
    suite = out / "mixed.yaml"
    suite.write_text(
        "description: one runbook with findings, one that fails\n"
        f"params:\n  target: local:{runbook_db}\n"
        "runbooks:\n"
        "  - {name: fixtures/findings, params: {severities: [critical, warning, ok, info]}}\n"
        "  - fixtures/failing\n"
    )
    proc = run_cli(["suite", str(suite), "--jobs", "1", "--out", str(out), "--fail-on", "none"], cli_env(pg), cwd=out)
    return {"proc": proc, "run": run_dir_of(out)}


def test_index_lists_the_worst_findings_above_the_runbook_table(mixed_suite):
    page = (mixed_suite["run"] / "index.html").read_text()
    first, runbooks = page.index("Look at first"), page.index("<h2>Runbooks</h2>")
    assert first < runbooks
    attention = page[first:runbooks]
    assert "fixture.sev0:obj0" in attention and "pgrb-sev-critical" in attention
    assert "fixture.sev1:obj1" in attention and "pgrb-sev-warning" in attention
    assert attention.index("fixture.sev0:obj0") < attention.index("fixture.sev1:obj1")  # worst first
    assert "fixture.sev2:obj2" not in attention and "fixture.role:postgres" not in attention  # ok, info
    assert 'href="fixtures-findings.html"' in attention


def test_status_words_are_not_severities(mixed_suite):
    out = mixed_suite["proc"].stdout
    assert mixed_suite["proc"].returncode == 2, mixed_suite["proc"].stderr  # a runbook failed
    rows = {line.split()[0]: line.split()[1] for line in out.splitlines() if line.startswith("fixtures/") and ":" not in line.split()[0]}
    assert rows == {"fixtures/findings": "ran", "fixtures/failing": "FAILED"}
    assert "look at first:" in out
    listed = [line.split()[:3] for line in out.split("look at first:")[1].splitlines()[1:] if line.startswith("  ")]
    assert listed[0] == ["critical", "fixtures/findings", "fixture.sev0:obj0:"]  # worst first
    assert ["warning", "fixtures/findings", "fixture.sev1:obj1:"] in listed[1:]
    assert all(sev in ("critical", "error", "warning") for sev, *_ in listed)
    page = (mixed_suite["run"] / "index.html").read_text()
    runbooks = page[page.index("<h2>Runbooks</h2>"):]
    assert ">FAILED</b>" in runbooks and "<td>ran</td>" in runbooks
