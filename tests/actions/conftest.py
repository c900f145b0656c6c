"""Fixtures every action test shares (the servers and databases come from tests/conftest.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def audit_log(tmp_path, monkeypatch):
    """Each test appends its audit records to its own file (``$PGRUNBOOKS_AUDIT_LOG``), never to the project's."""
    path = tmp_path / "audit.jsonl"
    monkeypatch.setenv("PGRUNBOOKS_AUDIT_LOG", str(path))
    return path
