"""replication_slots against real PostgreSQL (18 and 15): a forgotten physical slot that really reserves
WAL (seed.runtime.forgotten_slot) is found as the pg_monitor role postgres sees it, graded by the WAL it
keeps, and gone once the printed remediation drops it. The clean seed (no slot) is the true negative
in test_checks.py."""

from __future__ import annotations

import json

from pgrunbooks import checks
from pgrunbooks.db import connect
from pgrunbooks.findings import Severity
from pgrunbooks.sandbox import ADMIN_USER
from pgrunbooks.seed import runtime

SLOT = "victorysync_cdc"
SEGMENT = 16 * 1024**2


def _run(pg, db: str, **thresholds) -> list:
    # As postgres: not a superuser, a member of pg_monitor (what the check needs).
    with connect(pg.conninfo(db), runbook="test/replication") as session:
        return checks.run_checks(session, ids=["replication_slots"], thresholds={"replication_slots": thresholds})


def test_sandbox_servers_allow_replication_slots(pg, clean_db):
    with pg.connect(clean_db) as conn:
        assert int(conn.execute("show max_replication_slots").fetchone()[0]) > 0
        assert conn.execute("show wal_level").fetchone()[0] in ("replica", "logical")


def test_forgotten_slot_is_flagged_with_the_wal_it_keeps(pg, clean_db):
    with runtime.forgotten_slot(pg.conninfo(clean_db, user=ADMIN_USER), name=SLOT, segments=3) as slot:
        found = _run(pg, clean_db)
        stricter = _run(pg, clean_db, critical_bytes=SEGMENT)
    assert slot == SLOT
    flagged = {f.object: f for f in found if f.severity in (Severity.WARNING, Severity.CRITICAL)}
    assert set(flagged) == {f"slot:{SLOT}"}, found
    f = flagged[f"slot:{SLOT}"]
    assert f.severity is Severity.WARNING  # inactive, under the 10 GB default
    assert f.value >= 2 * SEGMENT and "no consumer is connected" in f.title
    assert f.data["wal_status"] in ("reserved", "extended") and f.data["slot_type"] == "physical"
    assert f"pg_drop_replication_slot('{SLOT}')" in f.remediation
    assert [x.severity for x in stricter if x.object == f"slot:{SLOT}"] == [Severity.CRITICAL]
    # the fault cleaned up after itself: nothing left to flag
    assert [x.severity for x in _run(pg, clean_db)] == [Severity.OK]


def test_cli_reports_the_forgotten_slot(pg, clean_db, capsys):
    from pgrunbooks.cli import main

    with runtime.forgotten_slot(pg.conninfo(clean_db, user=ADMIN_USER), name=SLOT, segments=2):
        code = main(["check", "--target", pg.conninfo(clean_db), "--check", "replication_slots", "--format", "json",
                     "--fail-on", "warning"])
        payload = json.loads(capsys.readouterr().out)
    assert code == 1
    assert {f["key"] for f in payload["findings"]} == {f"replication_slots:slot:{SLOT}"}
    assert main(["check", "--target", pg.conninfo(clean_db), "--check", "replication_slots",
                 "--fail-on", "warning"]) == 0
