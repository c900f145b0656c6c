"""Session safety: read-only by default, per-transaction timeouts, a name in pg_stat_activity."""

from __future__ import annotations

import socket
import threading
import time

import psycopg
import pytest

from pgrunbooks.db import connect
from pgrunbooks.errors import ConnectError
from pgrunbooks.targets import resolve


@pytest.fixture
def dsn_target(pg, fresh_db, monkeypatch):
    monkeypatch.setenv("PGRB_TEST_DSN", pg.conninfo(fresh_db, user="supabase_admin"))
    with pg.connect(fresh_db) as conn:
        conn.execute("create table public.t (id int primary key)")
    return resolve("env:PGRB_TEST_DSN")


def test_diagnostic_sessions_cannot_write(dsn_target):
    with connect(dsn_target, runbook="test/readonly") as session:
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            session.fetch("insert into public.t values (1)")


def test_mutating_sessions_can_write(dsn_target):
    with connect(dsn_target, runbook="test/write", read_only=False) as session:
        session.fetch("insert into public.t values (1)")
        assert session.scalar("select count(*) from public.t") == 1


def test_timeouts_are_transaction_local(dsn_target):
    with connect(dsn_target, runbook="test/timeouts", statement_timeout="1234ms", lock_timeout="567ms") as session:
        with session.transaction() as cur:
            cur.execute("select current_setting('statement_timeout') st, current_setting('lock_timeout') lt")
            assert cur.fetchone() == {"st": "1234ms", "lt": "567ms"}
        # Outside our transactions the server default is back: nothing leaks through a pooler.
        session.conn.autocommit = True
        assert session.conn.execute("show statement_timeout").fetchone()[0] == "0"


def test_statement_timeout_cancels_a_slow_query(dsn_target):
    with connect(dsn_target, runbook="test/slow", statement_timeout="200ms") as session:
        started = time.monotonic()
        with pytest.raises(psycopg.errors.QueryCanceled):
            session.fetch("select pg_sleep(5)")
        assert time.monotonic() - started < 3


def test_session_is_named_after_its_runbook(dsn_target):
    with connect(dsn_target, runbook="daily/health_overview") as session:
        name = session.scalar("select application_name from pg_stat_activity where pid = pg_backend_pid()")
    assert name == "pgrunbooks/daily/health_overview"


def test_unreachable_server_fails_within_the_connect_timeout(monkeypatch):
    # A listener that accepts and never answers: the handshake hangs until connect_timeout.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        stop = threading.Event()

        def hold():
            held = []
            silent.settimeout(0.2)
            while not stop.is_set():
                try:
                    held.append(silent.accept()[0])
                except OSError:
                    pass
            for conn in held:
                conn.close()

        thread = threading.Thread(target=hold, daemon=True)
        thread.start()
        monkeypatch.setenv("PGRB_SILENT", f"host=127.0.0.1 port={port} dbname=x user=x password=hush-hush")
        started = time.monotonic()
        with pytest.raises(ConnectError) as excinfo:
            connect("env:PGRB_SILENT", connect_timeout=2)
        elapsed = time.monotonic() - started
        stop.set()
        thread.join()
    assert elapsed < 8
    assert "cannot connect to target env:PGRB_SILENT" in str(excinfo.value)
    assert "hush-hush" not in str(excinfo.value)
    assert f'"127.0.0.1", port {port} failed: timeout expired' in str(excinfo.value)


def _cli_connect_error(pg, dsn: str) -> str:
    from clihelpers import cli_env, run_cli

    out = run_cli(["check", "--target", "env:PGRB_CONNECT_DSN"], cli_env(pg, PGRB_CONNECT_DSN=dsn), cwd=pg.home)
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr
    return out.stderr


def test_connection_refused_names_the_reason_host_and_port(pg):
    from pgrunbooks.sandbox import free_port

    port = free_port()  # nobody listens there
    err = _cli_connect_error(pg, f"host=127.0.0.1 port={port} dbname=x user=x password=refused-pw")
    assert f'connection to server at "127.0.0.1", port {port} failed: Connection refused' in err
    assert "refused-pw" not in err


def test_wrong_password_says_authentication_failed_without_the_password(pg):
    assert pg.sandbox.tcp  # the test server also listens on 127.0.0.1 (scram-sha-256)
    with pg.connect("postgres") as conn:
        conn.execute("drop role if exists pw_probe")
        conn.execute("create role pw_probe login password 'right-pw-123'")
    err = _cli_connect_error(pg, f"host=127.0.0.1 port={pg.port} dbname=postgres user=pw_probe password=wrong-pw-456")
    assert f'port {pg.port} failed' in err
    assert 'password authentication failed for user "pw_probe"' in err
    assert "wrong-pw-456" not in err and "right-pw-123" not in err
