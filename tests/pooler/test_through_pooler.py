"""Everything that must work through a transaction-mode pooler does, through a real pgbouncer
(PostgreSQL 18 and 15): every check, one mutating action, the daily suite, the admin console."""

from __future__ import annotations

import json

import psycopg
import pytest

from clihelpers import run_cli
from pgrunbooks import pooler as pooler_lib
from pgrunbooks.actions import apply, plan_terminate
from pgrunbooks.checks import run_checks
from pgrunbooks.db import connect
from pgrunbooks.findings import Severity
from pgrunbooks.seed.runtime import idle_connections

ENV = "PGRB_TEST_POOLER_DSN"


@pytest.fixture
def through_pooler(pooler, monkeypatch):
    """``target(db)`` -> ``env:PGRB_TEST_POOLER_DSN`` holding a DSN to ``db`` through pgbouncer."""
    def target(db: str, user: str = "postgres") -> str:
        monkeypatch.setenv(ENV, pooler.conninfo(db, user))
        return f"env:{ENV}"
    return target


@pytest.fixture(autouse=True)
def audit_log(tmp_path, monkeypatch):
    path = tmp_path / "audit.jsonl"
    monkeypatch.setenv("PGRUNBOOKS_AUDIT_LOG", str(path))
    return path


def test_every_check_runs_through_the_pooler_without_error(faults_db, through_pooler):
    with connect(through_pooler(faults_db), runbook="pooler-test") as s:
        backend = s.scalar("select pg_catalog.inet_server_port()")
        findings = run_checks(s)
    errors = [f for f in findings if f.severity is Severity.ERROR]
    assert not errors, [(f.check_id, f.detail) for f in errors]
    assert backend is None  # pgbouncer reaches the server over its unix socket: we really went through it
    assert any(f.check_id == "tenant_isolation" and f.severity is Severity.CRITICAL for f in findings)


def test_terminate_applies_through_the_pooler(pg, clean_db, through_pooler):
    with idle_connections(pg.conninfo(clean_db), 1, application_name="victorysync/pooled") as pids, \
            connect(through_pooler(clean_db), runbook="pooler-test", read_only=False) as s:
        plan = plan_terminate(s, states=["idle"], min_duration="0", applications=["victorysync/pooled"],
                              mode="terminate")
        assert plan.confirm == pids
        result = apply(plan, confirm=pids)
        assert result.ok and result.objects[0]["outcome"] == "terminated"
    with pg.connect(clean_db) as conn:
        assert not conn.execute("select exists (select from pg_stat_activity where pid = any(%s))", (pids,)).fetchone()[0]


def test_admin_console_shows_pools_clients_and_stats(pooler, clean_db):
    """SHOW POOLS / CLIENTS / STATS through the admin console (simple query protocol); waiting
    clients and their max wait: tests/incidents/test_connections.py (pool size 1, a held transaction)."""
    with psycopg.connect(pooler.conninfo(clean_db)) as client:
        client.execute("select 1")  # a transaction open: the pool has an active server connection
        view = pooler_lib.admin(pooler)
        pool = next(p for p in view["pools"] if p["database"] == clean_db and p["user"] == "postgres")
        assert pool["pool_mode"] == "transaction" and pool["sv_active"] == 1 and pool["cl_waiting"] == 0
        assert any(c["database"] == clean_db and c["state"] == "active" for c in view["clients"])
        assert {"total_xact_count", "total_wait_time"} <= set(view["stats"][0])
    assert pooler_lib.show(pooler.admin_conninfo(), "config")


def test_a_stopped_pooler_leaves_nothing_behind(pg):
    stopped = pooler_lib.start(pg.conninfo("postgres"), pool_size=1)
    pooler_lib.stop(stopped)
    assert not stopped.running and not stopped.directory.exists()


def test_daily_suite_runs_through_the_pooler(pg, clean_db, pooler, tmp_path, first_server):
    first_server(pg)  # one CLI run (a kernel start) is enough: the engine does not depend on the version
    env = pg.env(**{ENV: pooler.conninfo(clean_db)}, PLOOMBER_STATS_ENABLED="false", COLUMNS="200")
    out = tmp_path / "reports"
    proc = run_cli(["suite", "daily", "--target", f"env:{ENV}", "--out", str(out), "--fail-on", "error"], env,
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (run,) = [p for p in out.iterdir() if p.is_dir()]
    findings = json.loads(next(run.glob("*.findings.json")).read_text())["findings"]
    assert findings and not [f for f in findings if f["severity"] == "error"]
    clients = pooler_lib.admin(pooler)["stats"]
    assert any(st["database"] == clean_db and int(st["total_xact_count"]) > 0 for st in clients)


def test_missing_pgbouncer_fails_with_the_install_command(monkeypatch):
    monkeypatch.setattr(pooler_lib, "PGBOUNCER", "/nonexistent/pgbouncer")
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(pooler_lib.SandboxError) as raised:
        pooler_lib.binary()
    assert "apt-get install -y pgbouncer" in raised.value.hint
