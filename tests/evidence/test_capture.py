"""Evidence capture on a real server (PostgreSQL 18 and 15): samples, deltas, read-only, pg_monitor."""

from __future__ import annotations

import json
import threading
import time
import uuid

import psycopg
import pytest
from psycopg import sql

from pgrunbooks.db import connect
from pgrunbooks.errors import UsageError
from pgrunbooks.evidence import capture

PROBE = "select count(*) from public.organizations where name <> %s"


def _run_probe(conninfo: str, times: int, delay: float) -> None:
    time.sleep(delay)
    with psycopg.connect(conninfo, autocommit=True, application_name="victorysync/probe") as conn:
        for i in range(times):
            conn.execute(PROBE, (f"x{i}",)).fetchall()


def test_capture_takes_500_samples_and_measures_what_ran_during_the_window(pg, clean_db):
    conninfo = pg.conninfo(clean_db)
    _run_probe(conninfo, 7, 0)  # calls before the window: the baseline of mean_ms_before
    with connect(conninfo, runbook="evidence-test", read_only=False) as s:
        worker = threading.Thread(target=_run_probe, args=(conninfo, 25, 0.15))
        worker.start()
        started = time.monotonic()
        ev = capture(s, seconds=1.2, samples=500, progress=False)
        elapsed = time.monotonic() - started
        worker.join()
        assert s.conn.read_only is False, "the session's own mode is restored after the capture"
        own = s.backend_pid
    assert ev.sample_count == 500 and elapsed < 6
    assert own not in {x["pid"] for x in ev.sessions}, "the capture leaves its own backend out"
    probe = [r for r in ev.statements if "public.organizations" in r["query"] and "name <>" in r["query"]]
    assert len(probe) == 1, ev.statements
    assert probe[0]["calls"] == 25 and probe[0]["calls_before"] == 7 and probe[0]["mean_ms_before"] is not None
    assert not any("pgrunbooks" in r["query"] or r["query"].lower().startswith("begin") for r in ev.statements)
    assert ev.database["xact_commit"] >= 25 and "temp_bytes" in ev.database
    c = ev.connections
    assert c["usable"] == c["max_connections"] - c["superuser_reserved"] - c["reserved"] and c["headroom"] == c["usable"] - c["used"]
    assert c["reserved"] == (0 if pg.major < 16 else c["reserved"])
    doc = json.loads(ev.to_json())
    assert doc["sample_count"] == 500 and len(ev.to_json()) < 200_000
    assert set(ev.frames()) >= {"samples", "sessions", "lock_tree", "statements", "connections"}


def test_a_pg_monitor_only_role_captures_everything_including_disk(pg, clean_db):
    role = f"h16a_mon_{uuid.uuid4().hex[:6]}"
    with pg.connect(clean_db) as admin:
        admin.execute(sql.SQL("create role {} login in role pg_monitor").format(sql.Identifier(role)))
        admin.execute(sql.SQL("grant usage on schema extensions to {}").format(sql.Identifier(role)))
    try:
        with connect(pg.conninfo(clean_db, user=role), runbook="evidence-test") as s:
            ev = capture(s, seconds=0.5, samples=50, disk=True, progress=False)
        assert ev.sample_count == 50 and ev.skipped == {}, ev.skipped
        assert ev.disk["wal"]["files"] > 0 and ev.disk["archiver"] is not None and ev.disk["temp_files"] is not None
        assert ev.disk["largest_tables"] and ev.connections["used"] >= 1
        assert any(x["backend_type"] == "checkpointer" for x in ev.sessions), "pg_monitor sees every backend"
        with pg.connect(clean_db) as admin:
            admin.execute(sql.SQL("revoke usage on schema extensions from {}").format(sql.Identifier(role)))
        with connect(pg.conninfo(clean_db, user=role), runbook="evidence-test") as s:
            ev = capture(s, seconds=0.2, samples=10, progress=False)
        assert "grant usage on schema extensions" in ev.skipped["statements"] and ev.statements == []
    finally:
        with pg.connect(clean_db) as admin:
            admin.execute(sql.SQL("revoke usage on schema extensions from {}").format(sql.Identifier(role)))
            admin.execute(sql.SQL("drop role {}").format(sql.Identifier(role)))


@pytest.mark.parametrize("kwargs", [{"seconds": 0}, {"seconds": 601}, {"samples": 0}, {"seconds": "soon"}])
def test_a_bad_window_is_a_usage_error(pg, clean_db, kwargs):
    with connect(pg.conninfo(clean_db), runbook="evidence-test") as s:
        with pytest.raises(UsageError) as err:
            capture(s, progress=False, **kwargs)
    assert err.value.exit_code == 3
