"""The PostgreSQL server a bench measures: one given by ``--conninfo``, or a throwaway sandbox.

A throwaway server (own home, own port) keeps a bench from disturbing, or being disturbed by,
the project's ``.pgrunbooks`` sandbox; ``reuse_local`` lets a bench use that sandbox when it
is already running (seeding is what ``bench/seed.py`` measures, not server start-up).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

try:
    import pgrunbooks  # noqa: F401
except ImportError:  # a checkout without `pip install -e .`: every bench imports this module first
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from psycopg import conninfo as pg_conninfo


def add_server_args(parser) -> None:
    """``--conninfo`` (a server to use) and ``--pg-bin`` (binaries for a throwaway one): every bench has them."""
    parser.add_argument("--conninfo", help="superuser conninfo of the server to use (any database on it)")
    parser.add_argument("--pg-bin", help="PostgreSQL bin directory for a throwaway server (default: the wheel)")


def dsn(base: str, db: str, user: str | None = None) -> str:
    """``base`` (a conninfo without dbname) for database ``db``, as ``user`` when given."""
    return pg_conninfo.make_conninfo(base, dbname=db, **({"user": user} if user else {}))


def recreate(base: str, name: str, template: str | None = None) -> None:
    """Database ``name`` made anew on ``base``'s server: dropped if it exists, created (from ``template``)."""
    from pgrunbooks.sandbox import create_database, drop_database

    drop_database(dsn(base, "postgres"), name)
    create_database(dsn(base, "postgres"), name, template=template)


def drop(base: str, name: str) -> None:
    """Drop database ``name`` on ``base``'s server if it exists (its sessions disconnected)."""
    from pgrunbooks.sandbox import drop_database

    drop_database(dsn(base, "postgres"), name)


def _without_dbname(conninfo: str) -> str:
    params = pg_conninfo.conninfo_to_dict(conninfo)
    params.pop("dbname", None)
    return pg_conninfo.make_conninfo(**params)


@contextmanager
def server(conninfo: str | None, pg_bin: str | None, *, prefix: str, reuse_local: bool = False) -> Iterator[tuple[str, str]]:
    """Yield (superuser conninfo without dbname, where it is) and clean up a throwaway server."""
    if conninfo:
        yield _without_dbname(conninfo), "given by --conninfo"
        return
    from pgrunbooks.sandbox import ADMIN_USER, Sandbox, free_port

    if reuse_local and not pg_bin:
        local = Sandbox()
        if local.initialised and local.status().running:
            yield _without_dbname(local.status().conninfo("postgres", ADMIN_USER)), f"the local sandbox in {local.home}"
            return
    home = Path(tempfile.mkdtemp(prefix=prefix))
    home.chmod(0o755)
    box = Sandbox(home, pg_bin=pg_bin, port=free_port())
    try:
        status = box.start()
        yield _without_dbname(status.conninfo("postgres", ADMIN_USER)), f"a throwaway server in {home}"
    finally:
        box.stop()
        shutil.rmtree(home, ignore_errors=True)
