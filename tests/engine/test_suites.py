"""Suites and params files (pgrunbooks.engine.suites): every YAML file under params/ checked
against the notebooks it names, and how a suite is found by name (no kernel, no DB).

A suite that names a runbook which does not exist fails here: it would fail every scheduled run."""

from __future__ import annotations

from pathlib import Path

import pytest

from pgrunbooks.engine import params
from pgrunbooks.engine.suites import load_suite, looks_like_suite
from pgrunbooks.errors import UsageError

PROJECT = Path(__file__).resolve().parents[2]
PARAMS_DIR = PROJECT / "params"
RUNBOOKS = PROJECT / "runbooks"
PARAM_FILES = sorted(PARAMS_DIR.glob("*.yaml"))
SUITES = [p for p in PARAM_FILES if looks_like_suite(p)]
FLAT = [p for p in PARAM_FILES if p not in SUITES]


def _runbook_spec(name: str, suite: Path):
    path = RUNBOOKS / f"{name}.ipynb"
    assert path.is_file(), f"{suite.name} names runbook {name}, and there is no {path.relative_to(PROJECT)}"
    return params.notebook_parameters(path)


def test_the_three_suites_exist():
    assert {p.stem for p in SUITES} >= {"daily", "weekly", "monthly"}
    assert {p.name for p in FLAT} >= {"sandbox.yaml", "production.template.yaml"}


def _suite_cases():
    for path in SUITES:
        suite = load_suite(str(path))
        for entry in suite.entries:
            yield pytest.param(path, entry, id=f"{path.stem}:{entry.runbook}")


@pytest.mark.parametrize("path,entry", list(_suite_cases()))
def test_suite_params_match_the_notebook(path, entry):
    suite = load_suite(str(path))
    spec = _runbook_spec(entry.runbook, path)
    shared = {k: v for k, v in suite.params.items() if k in spec or k in params.UNIVERSAL}
    params.validate({**shared, **entry.params}, spec, runbook=entry.runbook)


@pytest.mark.parametrize("path", SUITES, ids=[p.stem for p in SUITES])
def test_suite_shared_params_are_declared_somewhere(path):
    suite = load_suite(str(path))
    declared: set[str] = set(params.UNIVERSAL)
    for entry in suite.entries:
        declared |= set(_runbook_spec(entry.runbook, path))
    assert set(suite.params) <= declared


@pytest.mark.parametrize("path", FLAT, ids=[p.name for p in FLAT])
def test_flat_params_file_fits_every_runbook_declaring_its_names(path):
    values = params.load_params_file(path)
    assert params.TARGET in values, "a params file names its target"
    notebooks = sorted(RUNBOOKS.rglob("*.ipynb"))
    assert notebooks, f"no runbooks under {RUNBOOKS}"
    for nb in notebooks:
        spec = params.notebook_parameters(nb)
        mine = {k: v for k, v in values.items() if k in spec or k in params.UNIVERSAL}
        # A required parameter (incidents/tenant_data_exposure's user) is given with -p, never by a flat file.
        mine.update({k: "x" for k, p in spec.items() if p.required and k not in mine})
        params.validate(mine, spec, runbook=str(nb.relative_to(RUNBOOKS)))


def test_load_suite_reports_unknown_suites(monkeypatch):
    monkeypatch.setenv("PGRUNBOOKS_PARAMS", str(PARAMS_DIR))
    with pytest.raises(UsageError, match="unknown suite 'hourly'") as caught:
        load_suite("hourly")
    assert "daily" in str(caught.value)


def test_a_suite_naming_a_missing_runbook_cannot_run(monkeypatch, tmp_path):
    """What the params/ checks above guard against, as a user meets it: exit 3 before anything runs."""
    from pgrunbooks.engine.suites import prepare_suite

    monkeypatch.setenv("PGRUNBOOKS_RUNBOOKS", str(RUNBOOKS))
    monkeypatch.setenv("PGRB_NIGHTLY_DSN", "host=127.0.0.1 dbname=x user=u")  # resolved, never connected to
    (tmp_path / "nightly.yaml").write_text("runbooks:\n  - daily/health_overview\n  - daily/not_written_yet\n")
    with pytest.raises(UsageError, match="unknown runbook 'daily/not_written_yet'") as caught:
        prepare_suite(load_suite(str(tmp_path / "nightly.yaml")), target="env:PGRB_NIGHTLY_DSN")
    assert caught.value.exit_code == 3
