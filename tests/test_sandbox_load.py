"""`pgrunbooks sandbox load` and `pgrunbooks sandbox fault start|stop|list`, through the real CLI."""

from __future__ import annotations

import time
import uuid

import pytest
from clihelpers import PROJECT, run_cli

from pgrunbooks.cli import main
from pgrunbooks.seed import workload


@pytest.fixture
def load_db(pg, clean_template):
    name = pg.create_database(f"l_{uuid.uuid4().hex[:10]}", template=clean_template)
    yield name
    pg.drop_database(name)


def _sessions(mon, application_name: str) -> int:
    return mon.execute("select count(*) from pg_stat_activity where application_name = %s",
                       (application_name,)).fetchone()[0]


def test_sandbox_load(pg, load_db):
    result = run_cli(["sandbox", "load", "--duration", "3s", "--clients", "2", "--db", load_db], pg.env(), PROJECT)
    assert result.returncode == 0, result.stderr
    tps = float(result.stdout.split("tps:", 1)[1].split()[0].replace(",", ""))
    assert tps > 0
    assert "recent_calls x4" in result.stderr and "clients:      2" in result.stdout
    with pg.connect(load_db) as mon:
        assert _sessions(mon, workload.APPLICATION_NAME) == 0
        assert mon.execute("select count(*) from extensions.pg_stat_statements s"
                           " where s.dbid = (select oid from pg_database where datname = current_database())"
                           " and s.query like 'insert into public.sms_messages%%' and s.calls > 0").fetchone()[0] == 1


def _cli(args, capsys) -> tuple[int, str, str]:
    """The CLI in-process (no interpreter start): exit code, stdout, stderr."""
    try:
        code = main(args)
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("args", [["--duration", "3x"], ["--duration", "0s"], ["--clients", "0"], ["--clients", "two"]])
def test_sandbox_load_bad_values_exit_3(first_pg, args, capsys):
    code, _, err = _cli(["sandbox", "load", "--home", str(first_pg.home), *args], capsys)
    assert code == 3 and "error:" in err


def test_sandbox_fault_round_trip(first_pg, load_db, capsys):
    pg, home = first_pg, ["--home", str(first_pg.home)]
    code, out, err = _cli(["sandbox", "fault", "start", "lock_queue", "--db", load_db, *home], capsys)
    try:
        assert code == 0, err
        assert "lock_queue: started" in out and "incidents/high_load" in out
        with pg.connect(load_db) as mon:
            # `start` returned once the fault is visible: the DDL and the readers already wait.
            assert mon.execute("select count(*) from pg_stat_activity where wait_event_type = 'Lock'"
                               " and datname = current_database()").fetchone()[0] == 4
        code, out, _ = _cli(["sandbox", "fault", "start", "lock_queue", "--db", load_db, *home], capsys)
        assert code == 0 and "lock_queue: already running" in out
        code, out, _ = _cli(["sandbox", "fault", "list", *home], capsys)
        assert code == 0
        assert [line for line in out.splitlines() if line.startswith("lock_queue ")][0].split()[1] == "running"
    finally:
        code, out, _ = _cli(["sandbox", "fault", "stop", "--all", *home], capsys)
    assert code == 0 and "lock_queue: stopped" in out
    with pg.connect(load_db) as mon:
        deadline = time.monotonic() + 5
        while mon.execute("select count(*) from pg_stat_activity where datname = current_database()"
                          " and pid <> pg_backend_pid()").fetchone()[0]:
            assert time.monotonic() < deadline, "fault sessions left behind"
            time.sleep(0.05)
    code, out, _ = _cli(["sandbox", "fault", "stop", "lock_queue", *home], capsys)
    assert code == 0 and "lock_queue: was not running" in out
    assert not (pg.home / "faults" / "lock_queue.pid").exists()
    code, _, err = _cli(["sandbox", "fault", "start", "no_such_fault", *home], capsys)
    assert code == 3 and "regressed_statement" in err
    code, _, err = _cli(["sandbox", "fault", "stop", *home], capsys)
    assert code == 3
