"""A real pgbouncer (transaction mode, loopback) in front of each test server, once per session.

pgbouncer is part of the test setup (the Makefile installs Debian's package): when it is
missing these tests FAIL with the command that installs it, they never skip."""

from __future__ import annotations

import pytest

from pgrunbooks import pooler as pooler_lib
from pgrunbooks.errors import SandboxError


@pytest.fixture(scope="session")
def pooler(pg):
    """pgbouncer in front of ``pg`` (every database name maps to ``pg``), pool size 5."""
    try:
        pooler_lib.binary()
    except SandboxError as exc:
        pytest.fail(f"{exc} — {exc.hint}", pytrace=False)
    running = pooler_lib.start(pg.conninfo("postgres"))
    yield running
    pooler_lib.stop(running)
