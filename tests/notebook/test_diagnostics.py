"""A diagnostic runbook declares its checks (its ``checks`` parameter); ``rb.diagnose`` runs
exactly those, and refuses an id it does not know before any query."""

from __future__ import annotations

import json

import pytest

from pgrunbooks import checks, db
from pgrunbooks import notebook as rb
from pgrunbooks.engine.params import notebook_parameters
from pgrunbooks.errors import ParameterError
from pgrunbooks.notebook.diagnostics import CHECKS_PARAMETER, check_ids
from pgrunbooks.refresh import PROJECT

from clihelpers import run_cli, run_dir_of

DIAGNOSTIC_RUNBOOKS = sorted(
    p for p in (PROJECT / "runbooks").rglob("*.ipynb") if CHECKS_PARAMETER in notebook_parameters(p)
)


def _declared(path) -> list[str]:
    return notebook_parameters(path)[CHECKS_PARAMETER].default


def test_diagnostic_runbooks_declare_known_checks():
    names = {str(p.relative_to(PROJECT / "runbooks").with_suffix("")) for p in DIAGNOSTIC_RUNBOOKS}
    assert {"daily/health_overview", "weekly/index_health", "weekly/maintenance_status",
            "weekly/security_audit", "weekly/data_consistency"} <= names
    for path in DIAGNOSTIC_RUNBOOKS:
        param = notebook_parameters(path)[CHECKS_PARAMETER]
        assert param.type == "list", f"{path.name}: `checks` must default to a list (so -p checks=[…] is checked)"
        assert check_ids(param.default) == param.default, path.name


def test_every_registered_check_is_run_by_a_runbook():
    run = {check_id for path in DIAGNOSTIC_RUNBOOKS for check_id in _declared(path)}
    assert not set(checks.REGISTRY) - run, "checks no runbook runs (add them to a runbook's `checks` parameter)"


@pytest.mark.parametrize("value", [["dead_tuples", "no_such_check"], ["no_such_check"]])
def test_an_unknown_check_id_is_refused_before_any_query(pg, clean_db, value):
    session = db.connect(pg.conninfo(clean_db, user="supabase_admin"), runbook="test/diagnose")
    session.close()  # a query would fail with a connection error, not a usage error
    with pytest.raises(ParameterError, match="parameter 'checks': unknown check 'no_such_check'") as caught:
        rb.diagnose(session, value)
    assert caught.value.exit_code == 3
    assert "pgrunbooks check --list" in caught.value.hint


@pytest.mark.parametrize("value, message", [
    ([], "is empty: the runbook would check nothing"),  # run_results would otherwise run every check
    ("dead_tuples", "must be a list of check ids"),
    ([1], "must be a list of check ids"),
    (None, "must be a list of check ids"),
])
def test_checks_must_be_a_non_empty_list_of_ids(value, message):
    with pytest.raises(ParameterError, match=message) as caught:
        check_ids(value)
    assert caught.value.exit_code == 3


def test_diagnose_runs_exactly_the_declared_checks(pg, faults_db):
    declared = ["never_analyzed", "dead_tuples"]
    with db.connect(pg.conninfo(faults_db), runbook="test/diagnose") as session:
        results = rb.diagnose(session, declared, thresholds={"dead_tuples": {"warning": 0.1}}, suppress=[])
    assert [r.id for r in results] == ["dead_tuples", "never_analyzed"]  # registry order
    assert {f.check_id for f in results.findings} == set(declared)
    assert results.get("dead_tuples").thresholds["warning"] == 0.1


def test_a_runbook_runs_the_checks_given_with_p(first_pg, faults_db, tmp_path):
    """`-p checks=[…]` narrows a diagnostic runbook: its findings come from those checks only."""
    done = run_cli(
        ["run", "weekly/data_consistency", "--target", first_pg.conninfo(faults_db), "--out", str(tmp_path),
         "-p", "checks=[missing_foreign_keys]", "--fail-on", "none"],
        env=first_pg.env(PLOOMBER_STATS_ENABLED="false"), cwd=PROJECT, timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(next(run_dir_of(tmp_path).glob("*.findings.json")).read_text())
    items = report["findings"] if isinstance(report, dict) else report
    assert items and {f["check_id"] for f in items} == {"missing_foreign_keys"}


def test_an_unknown_check_in_p_exits_3_before_anything_runs(tmp_path, capsys, monkeypatch):
    """A typo in `-p checks=[…]` is bad usage: exit 3 naming the id, no kernel, no report."""
    from pgrunbooks import cli

    monkeypatch.chdir(tmp_path)
    code = cli.main(["run", "weekly/data_consistency", "--out", str(tmp_path / "out"), "-p", "checks=[orphaned_rowz]"])
    err = capsys.readouterr().err
    assert code == 3, err
    assert "orphaned_rowz" in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
