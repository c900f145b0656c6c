"""Fixtures for the history store: a fresh, migrated history database on the ``pg`` server.

``history_db`` is a ``history`` target string (a DSN without password, role ``postgres``) that
``pgrunbooks.history.store.connect`` accepts. One history database per server is created and
migrated once; each test gets it empty (every ``pgrunbooks`` table but ``schema_version``
truncated), which is much cheaper than a ``CREATE DATABASE`` per test.
"""

from __future__ import annotations

import uuid

import psycopg
import pytest
from psycopg import sql

from pgrunbooks.history import store
from pgrunbooks.seed.schema import install_roles


def _create_history_database(pg, name: str | None = None) -> str:
    name = name or f"h_{uuid.uuid4().hex[:10]}"
    with pg.connect("postgres") as admin:
        install_roles(admin)  # postgres, anon, authenticated: cluster roles the seed would create
        admin.execute(sql.SQL("create database {} owner postgres").format(sql.Identifier(name)))
    return name


@pytest.fixture(scope="session")
def shared_history(pg):
    """The server's migrated history database (session-wide); use :func:`history_db` in tests."""
    name = _create_history_database(pg, f"history_{uuid.uuid4().hex[:6]}")
    dsn = pg.conninfo(name)
    store.connect(dsn).close()
    yield dsn
    pg.drop_database(name)


@pytest.fixture
def history_db(shared_history):
    """A migrated, empty history database on ``pg``; yields its ``history`` target string (a DSN)."""
    with psycopg.connect(shared_history, autocommit=True) as conn:
        tables = [sql.Identifier("pgrunbooks", r[0]) for r in conn.execute(
            "select tablename::text from pg_catalog.pg_tables where schemaname = 'pgrunbooks'"
            " and tablename <> 'schema_version' order by tablename")]
        conn.execute(sql.SQL("truncate {} restart identity cascade").format(sql.SQL(", ").join(tables)))
    yield shared_history


@pytest.fixture
def history_conn(history_db):
    """An autocommit connection to :func:`history_db`, closed afterwards."""
    conn = store.connect(history_db)
    yield conn
    conn.close()


@pytest.fixture
def unmigrated_history(shared_history):
    """:func:`shared_history` with its ``pgrunbooks`` schema dropped (as a brand-new history database);
    migrated again afterwards, so the tests after it find it as before. Yields its DSN."""
    with psycopg.connect(shared_history, autocommit=True) as conn:
        conn.execute("drop schema if exists pgrunbooks cascade")
    yield shared_history
    with psycopg.connect(shared_history, autocommit=True) as conn:
        conn.execute("drop schema if exists pgrunbooks cascade")
    store.connect(shared_history).close()
