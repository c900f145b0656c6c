"""Fixtures of the incident playbook tests (servers and seeded templates: tests/conftest.py)."""

from __future__ import annotations

import uuid

import pytest



@pytest.fixture(autouse=True)
def audit_log(tmp_path, monkeypatch):
    """Audit records go to the test's own file, never the project's."""
    path = tmp_path / "audit.jsonl"
    monkeypatch.setenv("PGRUNBOOKS_AUDIT_LOG", str(path))
    return path


@pytest.fixture(scope="module")
def faults_copy(pg, faults_template):
    """One private copy of the faulty database per module (no statistics rebuilt: the probes need none)."""
    name = pg.create_database(f"x_{uuid.uuid4().hex[:10]}", template=faults_template)
    yield name
    pg.drop_database(name)
