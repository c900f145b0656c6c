"""``pgrunbooks.notebook.start`` connects with the session rules, and its SQLAlchemy engine and
``%sql`` follow the same rules (read-only, SET LOCAL timeouts, application_name)."""

from __future__ import annotations

import time

import psycopg
import pytest

from pgrunbooks import notebook
from pgrunbooks.errors import ConnectError

from clihelpers import HangServer, ensure_runbook_role


@pytest.fixture
def hang_server():
    server = HangServer()
    yield server
    server.close()


@pytest.fixture
def session_db(pg, fresh_db, monkeypatch):
    """A database reachable as ``local:<db>`` (role postgres) and as ``env:PGRB_T_DSN`` (admin)."""
    with pg.connect(fresh_db) as conn:
        ensure_runbook_role(conn)
        conn.execute("create table public.t (id int primary key)")
        conn.execute("grant select on public.t to postgres")
    monkeypatch.setenv("PGRUNBOOKS_HOME", str(pg.home))
    monkeypatch.setenv("PGRB_T_DSN", pg.conninfo(fresh_db, user="supabase_admin"))
    return fresh_db


def test_start_connects_read_only_named_after_the_runbook(session_db, capsys):
    with notebook.start("test/start", f"local:{session_db}") as s:
        row = s.fetch_one(
            "select current_user as role, current_setting('application_name') as app,"
            " current_setting('transaction_read_only') as ro, current_setting('statement_timeout') as st"
        )
        assert row == {"role": "postgres", "app": "pgrunbooks/test/start", "ro": "on", "st": "30s"}
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            s.fetch("insert into public.t values (1)")
    header = capsys.readouterr().out
    assert f"target local:{session_db}" in header and "role postgres" in header and "read-only" in header


def test_mutating_start_is_read_write(session_db):
    with notebook.start("test/mutate", "env:PGRB_T_DSN", mutating=True, lock_timeout="1s") as s:
        s.fetch("insert into public.t values (42)")
        assert s.scalar("select current_setting('lock_timeout')") == "1s"
        assert s.scalar("select count(*) from public.t") == 1


def test_engine_follows_the_session_rules(session_db):
    import pandas as pd
    import sqlalchemy

    with notebook.start("test/engine", f"local:{session_db}", statement_timeout="7s") as s:
        df = pd.read_sql(
            "select current_setting('statement_timeout') st, current_setting('transaction_read_only') ro,"
            " current_setting('application_name') app",
            s.engine,
        )
        assert df.to_dict("records") == [{"st": "7s", "ro": "on", "app": "pgrunbooks/test/engine"}]
        with pytest.raises(sqlalchemy.exc.InternalError, match="read-only transaction"):
            with s.engine.begin() as conn:
                conn.exec_driver_sql("insert into public.t values (1)")
        # The timeout was SET LOCAL: the engine's connection has the server default outside a transaction.
        with s.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            assert conn.exec_driver_sql("show statement_timeout").scalar() == "0"


def test_unreachable_target_fails_within_its_connect_timeout(hang_server, monkeypatch):
    monkeypatch.setenv("PGRB_T_HANG", hang_server.dsn(password="Hang-pw-123", timeout=2))
    started = time.monotonic()
    with pytest.raises(ConnectError) as caught:
        notebook.start("test/hang", "env:PGRB_T_HANG")
    elapsed = time.monotonic() - started
    assert 1.5 <= elapsed < 8, elapsed
    message = str(caught.value)
    assert "env:PGRB_T_HANG" in message and "Hang-pw-123" not in message
    assert hang_server.accepted >= 1


def test_sql_magic_uses_the_session_target_and_rules(session_db):
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    try:
        assert shell.run_cell(f'from pgrunbooks import notebook as rb\ns = rb.start("test/sql", "local:{session_db}")').success
        result = shell.run_cell(
            "r = %sql select current_setting('application_name') app, current_setting('transaction_read_only') ro"
        )
        assert result.success
        assert list(shell.user_ns["r"].dicts()) == [{"app": "pgrunbooks/test/sql", "ro": "on"}]
        failed = shell.run_cell("%sql insert into public.t values (1)")
        assert not failed.success, "a failing %sql cell fails (short_errors off)"
        after = shell.run_cell("n = %sql select count(*) as n from public.t")
        assert after.success, "the failed statement's transaction was rolled back"
        idle = shell.user_ns["s"].scalar(
            "select count(*) from pg_catalog.pg_stat_activity where application_name = 'pgrunbooks/test/sql'"
            " and state = 'idle in transaction'"
        )
        assert idle == 0, "each %sql statement is its own short transaction"
    finally:
        shell.run_cell("s.close()")
