"""drop_slot: an inactive replication slot is dropped only with its exact name; an active one is refused
(PostgreSQL 18 and 15). Slots are cluster-wide: each test names its own and removes it."""

from __future__ import annotations

import contextlib
import json
import uuid

import psycopg
import pytest

from pgrunbooks.actions import ConfirmationError, PreconditionError, apply
from pgrunbooks.actions.slots import plan_drop_slot
from pgrunbooks.db import connect
from pgrunbooks.errors import UsageError

SLOTS = "select slot_name from pg_catalog.pg_replication_slots where slot_name = %s"


@contextlib.contextmanager
def physical_slot(pg, db, *, temporary: bool = False):
    """A physical slot reserving WAL; a temporary one is held (active) by the connection that made it."""
    name = f"h16a_{uuid.uuid4().hex[:8]}"
    conn = psycopg.connect(pg.admin_conninfo(db), autocommit=True)
    try:
        conn.execute("select pg_catalog.pg_create_physical_replication_slot(%s, true, %s)", (name, temporary))
        yield name
    finally:
        with contextlib.suppress(psycopg.Error):
            conn.execute("select pg_catalog.pg_drop_replication_slot(slot_name) from pg_catalog.pg_replication_slots"
                         " where slot_name = %s and not active", (name,))
        conn.close()


def exists(pg, db, name) -> bool:
    with pg.connect(db) as conn:
        return conn.execute(SLOTS, (name,)).fetchone() is not None


@pytest.fixture
def admin_session(pg, clean_db):
    """The drop needs REPLICATION or superuser: the test server's admin."""
    with connect(pg.admin_conninfo(clean_db), runbook="incidents/disk_space", read_only=False) as s:
        yield s


def test_an_inactive_slot_is_dropped_only_with_its_exact_name(pg, clean_db, admin_session, audit_log):
    with physical_slot(pg, clean_db) as name:
        plan = plan_drop_slot(admin_session, name)
        assert exists(pg, clean_db, name), "making the plan changes nothing"
        assert plan.ready and plan.confirm == name and "cannot be restored" in plan.undo
        for wrong in (name.upper(), name + "x", None, True):
            with pytest.raises(ConfirmationError):
                apply(plan, confirm=wrong)
        assert exists(pg, clean_db, name)
        result = apply(plan, confirm=name, progress=False)
        assert result.ok and result.outcome == "applied" and not exists(pg, clean_db, name)
        assert "starts from the current WAL position" in result.undo
    records = [json.loads(line) for line in audit_log.read_text().splitlines()]
    applied = [r for r in records if r.get("outcome") == "applied"]
    assert len(applied) == 1 and applied[0]["action"] == "drop_slot" and applied[0]["parameters"]["slot"] == name
    assert sum(r.get("outcome") == "refused" for r in records) == 4


def test_an_active_slot_is_refused(pg, clean_db, admin_session):
    with physical_slot(pg, clean_db, temporary=True) as name:
        plan = plan_drop_slot(admin_session, name)
        assert any("is active" in b for b in plan.blockers), plan.blockers
        assert plan.objects[0]["action"] == "refused"
        with pytest.raises(PreconditionError):
            apply(plan, confirm=name, progress=False)
        assert exists(pg, clean_db, name)


def test_a_role_without_replication_gets_a_blocker_and_an_unknown_slot_is_a_usage_error(pg, clean_db):
    with physical_slot(pg, clean_db) as name, connect(pg.conninfo(clean_db), runbook="incidents/disk_space") as s:
        plan = plan_drop_slot(s, name)
        assert any("REPLICATION attribute" in b for b in plan.blockers)
        with pytest.raises(UsageError, match="no such replication slot") as err:
            plan_drop_slot(s, "nosuch_slot")
        assert err.value.exit_code == 3 and name in err.value.hint
