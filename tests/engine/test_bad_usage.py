"""Bad usage exits 3 before any kernel starts or anything connects (pgrunbooks.engine.prepare):
unknown or mistyped parameters, a missing required one, a bad target. In-process, no kernel."""

from __future__ import annotations

import time

import pytest

from pgrunbooks import cli

from clihelpers import HangServer


@pytest.fixture
def hang_dsn(monkeypatch):
    server = HangServer()
    monkeypatch.setenv("PGRB_HANG_DSN", server.dsn(timeout=2))
    yield server
    server.close()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["-p", "limt=3"], "unknown parameter 'limt' (did you mean limit?)"),
        (["-p", "limit=abc"], "'limit' must be an int"),
        (["-p", "with_chart=maybe"], "'with_chart' must be a bool"),
    ],
)
def test_bad_parameters_exit_3_without_connecting(in_process, hang_dsn, capsys, extra, message):  # noqa: F811
    started = time.monotonic()
    code = cli.main(["run", "fixtures/findings", "--target", "env:PGRB_HANG_DSN", "--out", str(in_process), *extra])
    assert code == 3
    assert message in capsys.readouterr().err
    assert time.monotonic() - started < 2, "nothing waited on the unreachable server"
    assert hang_dsn.accepted == 0, "no connection was attempted"
    assert not list(in_process.glob("*/")), "no run directory"


def test_missing_required_parameter_exits_3(in_process, capsys):  # noqa: F811
    assert cli.main(["run", "fixtures/required", "--out", str(in_process)]) == 3
    assert "parameter 'tenant' is required" in capsys.readouterr().err


def _sessions(conn) -> int:
    """Sessions ever established to this database (pg_stat_database.sessions, PG 14+)."""
    conn.execute("select pg_catalog.pg_stat_clear_snapshot()")
    return conn.execute(
        "select sessions from pg_catalog.pg_stat_database where datname = pg_catalog.current_database()"
    ).fetchone()[0]


def _sessions_settled(conn, expected_at_least: int, wait: float = 5.0) -> int:
    deadline = time.monotonic() + wait
    value = _sessions(conn)
    while value < expected_at_least and time.monotonic() < deadline:
        time.sleep(0.1)
        value = _sessions(conn)
    return value


def test_no_session_is_opened_for_bad_parameters(pg, runbook_db, in_process):  # noqa: F811
    import psycopg

    with pg.connect(runbook_db) as watcher:
        start = _sessions(watcher)
        psycopg.connect(pg.conninfo(runbook_db)).close()  # control: one session is counted
        control = _sessions_settled(watcher, start + 1)
        assert control == start + 1
        assert cli.main(["run", "findings", "--target", f"local:{runbook_db}", "-p", "ratio=fast"]) == 3
        time.sleep(1.0)
        assert _sessions(watcher) == control, "the bad run opened no session"


@pytest.mark.parametrize(
    "target, message",
    [
        ("local; drop table x", "unknown target"),
        ("service:victorysync-nope", "no libpq service named"),
        ("postgresql://u:pw-in-target@h/db", "must not carry a password"),
        ("env:PGRB_NOT_SET", "PGRB_NOT_SET is not set"),
    ],
)
def test_bad_targets_exit_3_before_the_kernel(in_process, capsys, monkeypatch, target, message):  # noqa: F811
    monkeypatch.setenv("PGSERVICEFILE", str(in_process / "none.conf"))
    monkeypatch.delenv("PGRB_NOT_SET", raising=False)
    assert cli.main(["run", "fixtures/findings", "-p", f"target={target}"]) == 3
    err = capsys.readouterr().err
    assert message in err and "pw-in-target" not in err
