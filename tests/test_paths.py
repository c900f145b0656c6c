"""Where things are (pgrunbooks.paths): the one project finder, and the folders it gives the
engine, the audit trail and the notebook refresher. No database."""

from __future__ import annotations

from pathlib import Path

import pytest

from pgrunbooks import audit, paths, refresh
from pgrunbooks.errors import UsageError

PROJECT = Path(__file__).resolve().parents[1]


@pytest.fixture
def no_overrides(monkeypatch):
    for name in (paths.ENV_RUNBOOKS, paths.ENV_PARAMS, audit.ENV_LOG):
        monkeypatch.delenv(name, raising=False)


def test_runbooks_directory_is_found_from_the_project(no_overrides, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # outside the project: the editable install's checkout
    assert paths.runbooks_dir() == PROJECT / "runbooks"
    monkeypatch.chdir(PROJECT / "lib")
    assert paths.runbooks_dir() == PROJECT / "runbooks"


def test_a_dba_repository_of_runbooks_is_its_own_project(no_overrides, monkeypatch, tmp_path):
    """From a notebook's folder (where papermill and JupyterLab run it), the runbooks, suites
    and audit trail are the repository's, not the checkout's."""
    (tmp_path / "runbooks" / "daily").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "runbooks" / "daily")
    assert paths.project_root() == tmp_path
    assert paths.runbooks_dir() == tmp_path / "runbooks"
    assert paths.params_dir() == tmp_path / "params"
    assert audit.default_path() == tmp_path / "audit" / "audit.jsonl"


def test_a_sandbox_folder_marks_the_project_of_the_audit_trail(no_overrides, monkeypatch, tmp_path):
    (tmp_path / ".pgrunbooks").mkdir()
    (tmp_path / "scratch").mkdir()
    monkeypatch.chdir(tmp_path / "scratch")
    assert audit.default_path() == tmp_path / "audit" / "audit.jsonl"
    assert paths.runbooks_dir() == PROJECT / "runbooks", "no runbooks there: the checkout's"


def test_outside_any_project_the_audit_trail_is_local(no_overrides, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert paths.project_root() is None
    assert audit.default_path() == tmp_path / "audit" / "audit.jsonl"


def test_environment_overrides_win(no_overrides, monkeypatch, tmp_path):
    monkeypatch.setenv(paths.ENV_RUNBOOKS, str(tmp_path))
    monkeypatch.setenv(paths.ENV_PARAMS, str(tmp_path / "p"))
    assert paths.runbooks_dir() == tmp_path and paths.params_dir() == tmp_path / "p"
    monkeypatch.setenv(paths.ENV_RUNBOOKS, str(tmp_path / "missing"))
    with pytest.raises(UsageError, match="is not a directory") as caught:
        paths.runbooks_dir()
    assert caught.value.exit_code == 3


def test_the_refresher_works_on_the_checkout():
    assert refresh.PROJECT == PROJECT
