"""Fixtures of the engine tests: a database for the fixture runbooks, the CLI in this process."""

from __future__ import annotations

import pytest

from clihelpers import FIXTURES, make_runbook_db


@pytest.fixture(scope="module")
def runbook_db(pg):
    """A database the fixture runbooks connect to (``public.canary`` holds one row)."""
    name = make_runbook_db(pg)
    yield name
    pg.drop_database(name)


@pytest.fixture
def in_process(first_pg, monkeypatch, tmp_path):
    """For ``cli.main([...])`` in this process: the first server is ``local``, the fixture
    notebooks are the runbooks, the working directory is ``tmp_path`` (returned)."""
    monkeypatch.setenv("PGRUNBOOKS_HOME", str(first_pg.home))
    monkeypatch.setenv("PGRUNBOOKS_RUNBOOKS", str(FIXTURES))
    monkeypatch.chdir(tmp_path)
    return tmp_path
