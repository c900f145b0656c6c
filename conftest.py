"""nbval wiring: committed notebooks run against a freshly seeded sandbox.

``make test`` collects every notebook under ``runbooks/`` and ``notebooks/`` with
``--nbval-lax``. Before the first notebook's kernel starts, a PostgreSQL 18 sandbox is
started in a temporary directory and seeded exactly as ``make notebooks`` seeds it
(scale 1, every fault), and ``PGRUNBOOKS_HOME`` points the notebooks' default
``target = "local"`` at it. Cells marked ``# NBVAL_CHECK_OUTPUT`` must reproduce their
committed output (after ``tests/nbval_sanitize.cfg``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

_sandbox_home: Path | None = None


def notebook_sandbox() -> Path:
    """Start and seed the notebooks' sandbox once per test session; returns its home."""
    global _sandbox_home
    if _sandbox_home is None:
        from pgrunbooks.progress import HEADLESS
        from pgrunbooks.refresh import seed_sandbox

        home = Path(tempfile.mkdtemp(prefix="pgrb-nb-"))
        home.chmod(0o755)
        seed_sandbox(home)
        _sandbox_home = home
        os.environ["PGRUNBOOKS_HOME"] = str(home)
        os.environ[HEADLESS] = "1"  # as make notebooks runs them: progress as a final line
    return _sandbox_home


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    # The kernel starts in the notebook collector's setup, which runs after this hook.
    if type(item).__name__ == "IPyNbCell":
        notebook_sandbox()


def pytest_sessionfinish(session: pytest.Session) -> None:
    global _sandbox_home
    if _sandbox_home is not None:
        from pgrunbooks.sandbox import Sandbox

        Sandbox(_sandbox_home).stop()
        shutil.rmtree(_sandbox_home, ignore_errors=True)
        _sandbox_home = None


@pytest.fixture(scope="session")
def demo_sandbox() -> Path:
    """The seeded sandbox the committed notebooks were produced on (``victorysync``, scale 1, all faults)."""
    return notebook_sandbox()
