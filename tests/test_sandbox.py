"""The sandbox server: lifecycle, root handling, status and clear errors."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import psycopg
import pytest
from clihelpers import run_cli

from pgrunbooks.errors import PortInUseError, SandboxError
from pgrunbooks.sandbox import ADMIN_USER, SERVICE_USER, Sandbox, _make_traversable, free_port
from pgrunbooks.seed import CLUSTER_FAULTS, FAULTS, revert_faults

PGRUNBOOKS = [sys.executable, "-m", "pgrunbooks"]


@pytest.fixture
def home():
    path = Path(tempfile.mkdtemp(prefix="pgrb-sbx-"))
    path.chmod(0o755)
    yield path
    Sandbox(path).stop() if (path / "data" / "PG_VERSION").exists() else None
    shutil.rmtree(path, ignore_errors=True)


def _cli(*args: str, home: Path, user: str | None = None, timeout: int = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ, PGRUNBOOKS_HOME=str(home))
    kwargs = {}
    if user:
        account = pwd.getpwnam(user)
        kwargs = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
        env["HOME"] = str(home)
    return subprocess.run(
        [*PGRUNBOOKS, *args], capture_output=True, text=True, env=env, timeout=timeout, cwd=home, **kwargs
    )


def test_start_stop_restart_are_idempotent(pg, home):
    sandbox = Sandbox(home, pg_bin=pg.sandbox.pg_bin)
    first = sandbox.start()
    again = sandbox.start()
    assert first.running and again.running and first.pid == again.pid
    with psycopg.connect(first.conninfo("postgres", ADMIN_USER)) as conn:
        assert conn.info.server_version // 10000 == pg.major
        assert conn.execute("select current_user").fetchone()[0] == ADMIN_USER
    assert not sandbox.stop().running
    assert not sandbox.stop().running  # stopping a stopped sandbox is fine
    restarted = sandbox.start()
    assert restarted.running and restarted.pid != first.pid


def test_server_runs_unprivileged_when_started_as_root(pg, home):
    if os.geteuid() != 0:
        pytest.skip("only meaningful as root")
    status = Sandbox(home, pg_bin=pg.sandbox.pg_bin).start()
    owner = pwd.getpwuid(os.stat(f"/proc/{status.pid}").st_uid).pw_name
    assert owner == SERVICE_USER


def test_cli_works_as_a_normal_user(pg, home):
    if os.geteuid() != 0:
        pytest.skip("already a normal user: the other tests cover it")
    account = pwd.getpwnam(SERVICE_USER)
    os.chown(home, account.pw_uid, account.pw_gid)
    # The interpreter may live under /root (pyenv): the other user needs search permission to run it.
    for path in (Path(sys.executable), Path(sys.executable).resolve(), Path(psycopg.__file__).resolve()):
        _make_traversable(path.parent)
    started = _cli("sandbox", "start", "--pg-bin", str(pg.sandbox.pg_bin), home=home, user=SERVICE_USER)
    assert started.returncode == 0, started.stderr
    assert "running" in started.stdout
    stopped = _cli("sandbox", "stop", home=home, user=SERVICE_USER)
    assert stopped.returncode == 0, stopped.stderr
    assert "stopped" in stopped.stdout


def test_status_prints_version_and_connection_string(pg, home):
    _cli("sandbox", "start", "--pg-bin", str(pg.sandbox.pg_bin), home=home)
    out = _cli("sandbox", "status", home=home)
    assert out.returncode == 0
    assert f"postgres:   {pg.major}." in out.stdout
    assert f"postgresql://postgres@/victorysync?host={home / 'run'}" in out.stdout
    _cli("sandbox", "stop", home=home)
    stopped = _cli("sandbox", "status", home=home)
    assert stopped.returncode == 1 and "stopped" in stopped.stdout


def test_port_already_taken_gives_a_clear_error(pg, home):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(PortInUseError, match=f"port {port} .* already in use"):
            Sandbox(home, pg_bin=pg.sandbox.pg_bin, port=port).start()
        out = _cli("sandbox", "start", "--port", str(port), "--pg-bin", str(pg.sandbox.pg_bin), home=home)
    assert out.returncode == 3
    assert "already in use" in out.stderr and "Traceback" not in out.stderr


def test_loopback_port_accepts_password_logins_only(pg, home):
    port = free_port()
    status = Sandbox(home, pg_bin=pg.sandbox.pg_bin, port=port).start()
    assert status.tcp
    with psycopg.connect(status.conninfo("postgres", ADMIN_USER), autocommit=True) as conn:
        conn.execute("create role tcp_user login password 'sekret-tcp'")
    with psycopg.connect(host="127.0.0.1", port=port, dbname="postgres", user="tcp_user", password="sekret-tcp"):
        pass
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(host="127.0.0.1", port=port, dbname="postgres", user="tcp_user", password="wrong")


def test_unknown_bin_dir_is_a_clear_error(home):
    with pytest.raises(SandboxError, match="does not contain initdb"):
        Sandbox(home, pg_bin=home).start()


def test_reset_gives_an_empty_cluster(pg, home):
    sandbox = Sandbox(home, pg_bin=pg.sandbox.pg_bin)
    status = sandbox.start()
    with psycopg.connect(status.conninfo("postgres", ADMIN_USER), autocommit=True) as conn:
        conn.execute("create database leftover")
    status = sandbox.reset()
    with psycopg.connect(status.conninfo("postgres", ADMIN_USER)) as conn:
        names = {r[0] for r in conn.execute("select datname from pg_database")}
    assert "leftover" not in names


def test_server_has_supabase_observability_settings(pg):
    with pg.connect("postgres") as conn:
        settings = dict(conn.execute(
            "select name, setting from pg_settings where name in ('shared_preload_libraries', 'track_io_timing')"
        ).fetchall())
    assert "pg_stat_statements" in settings["shared_preload_libraries"]
    assert settings["track_io_timing"] == "on"


def _findings(pg, db: str, cwd: Path, *args: str) -> list[dict]:
    out = run_cli(["check", "--target", f"local:{db}", "--format", "json", "--fail-on", "none", *args], pg.env(), cwd)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)["findings"]


def test_seed_none_after_all_leaves_a_clean_cluster(pg, tmp_path):
    """Roles are cluster-wide: the extra superuser of `--faults all` must not survive `--faults none`."""
    db = f"sbx_{uuid.uuid4().hex[:8]}"
    seed = ["sandbox", "seed", "--scale", "0.05", "--db", db, "--faults"]
    try:
        assert run_cli([*seed, "all"], pg.env(), tmp_path).returncode == 0
        planted = _findings(pg, db, tmp_path, "--check", "privileged_roles")
        assert {f["key"] for f in planted if f["severity"] == "critical"} == {"privileged_roles:role:legacy_admin"}
        reseeded = run_cli([*seed, "none"], pg.env(), tmp_path)
        assert reseeded.returncode == 0, reseeded.stderr
        assert "with faults: none" in reseeded.stderr
        findings = _findings(pg, db, tmp_path)
    finally:
        with pg.connect("postgres") as conn:
            revert_faults(conn, CLUSTER_FAULTS)
        pg.drop_database(db)
    explained = {check for fault in FAULTS.values() for check in fault.finds + fault.also_flagged_by}
    flagged = [f["key"] for f in findings if f["check_id"] in explained and f["severity"] in ("warning", "critical")]
    assert flagged == []
    assert [f["severity"] for f in findings if f["check_id"] == "privileged_roles"] == ["ok"]


def test_port_on_a_running_sandbox_says_a_restart_is_needed(pg, home, first_server):
    first_server(pg)  # the message is ours, not the server's: one version is enough
    started = _cli("sandbox", "start", "--pg-bin", str(pg.sandbox.pg_bin), home=home)
    assert started.returncode == 0, started.stderr
    port = free_port()
    refused = _cli("sandbox", "start", "--port", str(port), home=home)
    assert refused.returncode == 2
    assert "already running and has no TCP listener" in refused.stderr
    assert f"pgrunbooks sandbox stop && pgrunbooks sandbox start --port {port}" in refused.stderr
    auto = _cli("sandbox", "start", "--port", "auto", home=home)
    assert auto.returncode == 2 and "needs a restart" in auto.stderr
    status = _cli("sandbox", "status", home=home)
    assert "tcp:" not in status.stdout  # nothing claims a listener that does not exist
    _cli("sandbox", "stop", home=home)
    listening = _cli("sandbox", "start", "--port", "auto", home=home)
    assert listening.returncode == 0, listening.stderr
    tcp_port = int(listening.stdout.split("tcp:        127.0.0.1:")[1].split()[0])
    socket.create_connection(("127.0.0.1", tcp_port), timeout=5).close()
    again = _cli("sandbox", "start", "--port", "auto", home=home)  # keeps the listener it has
    assert again.returncode == 0 and f"tcp:        127.0.0.1:{tcp_port}" in again.stdout


def test_psql_passes_its_arguments_to_psql(pg, home):
    assert _cli("sandbox", "start", "--pg-bin", str(pg.sandbox.pg_bin), home=home).returncode == 0
    out = _cli("sandbox", "psql", "--user", ADMIN_USER, "--db", "postgres", "-At", "-c", "select 40 + 2", home=home)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "42"
    after = _cli("sandbox", "psql", "-c", "select current_user", "-At", "--user", ADMIN_USER, "--db", "postgres", home=home)
    assert after.returncode == 0 and after.stdout.strip() == ADMIN_USER
    dashed = _cli("sandbox", "psql", "--user", ADMIN_USER, "--db", "postgres", "--", "-At", "-c", "select 7", home=home)
    assert dashed.returncode == 0 and dashed.stdout.strip() == "7"
