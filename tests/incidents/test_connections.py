"""connections_exhausted's ranking: the flood or the idle-in-transaction holders named first, a quiet
database has nothing wrong, and pgbouncer's waiting clients are reported (PostgreSQL 18 and 15)."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from incident_helpers import session
from pgrunbooks import pooler as pooler_lib
from pgrunbooks.errors import SandboxError, TargetError
from pgrunbooks.evidence import capture
from pgrunbooks.incidents import connections
from pgrunbooks.seed.incidents import connection_flood, idle_in_transaction_holders

SHORT = dict(seconds=0.2, samples=10, progress=False)


def _rank(pg, db, **kwargs):
    with session(pg, db, runbook="incidents/connections_exhausted") as s:
        ev = capture(s, **SHORT)
    causes = connections.rank(ev, **kwargs)
    return causes, connections.findings(causes, ev, pooler=kwargs.get("pooler"))


def test_flood_and_idle_holders_the_flood_is_first(pg, clean_db):
    admin = pg.admin_conninfo(clean_db)
    with idle_in_transaction_holders(admin, count=1, age=0.5) as held, connection_flood(admin) as flood:
        causes, findings = _rank(pg, clean_db, idle_in_transaction_s=0.2)
    assert causes[0].kind == "connection_flood" and causes[0].object == f"application:{flood.application_name}"
    assert findings[0].severity == "critical" and findings[0].check_id == "connections_exhausted.connection_flood"
    assert causes[0].data["headroom"] <= 5 and causes[0].action == "terminate_sessions"
    assert any(c.kind == "idle_in_transaction" and c.object == f"application:{held.application_name}" for c in causes)


def test_idle_in_transaction_holders_alone_are_first(pg, clean_db):
    with idle_in_transaction_holders(pg.admin_conninfo(clean_db), count=1, age=0.5) as held:
        causes, findings = _rank(pg, clean_db, idle_in_transaction_s=0.2)
    assert causes[0].kind == "idle_in_transaction" and causes[0].data["application"] == held.application_name
    assert findings[0].severity == "warning"


def test_quiet_database_has_nothing_wrong(pg, clean_db):
    causes, findings = _rank(pg, clean_db)
    assert causes == []
    (only,) = findings
    assert only.severity == "ok" and "headroom" in only.title


def test_pooler_waiting_clients_and_max_wait_are_reported(pg, clean_db, monkeypatch, first_server):
    first_server(pg)  # pgbouncer's behaviour does not depend on the server version
    try:
        pooler_lib.binary()
    except SandboxError as exc:
        pytest.fail(f"{exc} — {exc.hint}", pytrace=False)
    with pooler_lib.running(pg.conninfo("postgres"), pool_size=1) as small:
        holder = psycopg.connect(small.conninfo(clean_db))
        holder.execute("select 1")  # a transaction held open: the pool's only server connection
        waiter = psycopg.connect(small.conninfo(clean_db), autocommit=True)
        thread = threading.Thread(target=lambda: waiter.execute("select 1"), daemon=True)
        thread.start()
        try:
            monkeypatch.setenv("PGRB_TEST_POOLER_ADMIN", small.admin_conninfo())
            deadline = time.monotonic() + 5
            while True:
                view = connections.pooler_view(connections.pooler_conninfo("env:PGRB_TEST_POOLER_ADMIN"))
                waiting = connections._waiting(view)
                if (waiting and waiting[0].data["max_wait_s"] > 0) or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            causes, findings = _rank(pg, clean_db, pooler=view)
        finally:
            holder.rollback()
            thread.join(5)
            holder.close()
            waiter.close()
    first = causes[0]
    assert first.kind == "pooler_clients_waiting" and first.data["waiting"] == 1
    assert first.data["max_wait_s"] > 0 and first.object == f"pool:{clean_db}/postgres"
    assert findings[0].check_id == "connections_exhausted.pooler_clients_waiting"
    assert view["config"]["default_pool_size"] == "1"


def test_a_pooler_target_with_a_password_is_refused_before_connecting():
    with pytest.raises(TargetError):
        connections.pooler_conninfo("host=127.0.0.1 port=6432 user=u password=never-used")
    assert connections.pooler_conninfo(None) is None
    assert "dbname=pgbouncer" in connections.pooler_conninfo("host=127.0.0.1 port=6432 user=u dbname=victorysync")
