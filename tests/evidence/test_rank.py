"""Each playbook's ranking against its planted runtime fault names that fault FIRST; a quiet database has
no cause (PostgreSQL 18 and 15). The faults come from seed/incidents.py and undo themselves on exit."""

from __future__ import annotations

import pytest

from pgrunbooks.db import connect
from pgrunbooks.evidence import capture, findings, rank, verdict
from pgrunbooks.seed import incidents

#: a short window: the faults are steady, well under a second of samples sees them; a spilling sort
#: is only counted when it completes, so temp_spills gets a longer one
WINDOW = {"seconds": 0.6, "samples": 60, "progress": False}
LONGER = {"temp_spills": 1.5}


def _expected_object(planted) -> str:
    if planted.kind == "lock_queue":
        return f"pid:{planted.root_pid}"
    if planted.kind == "wal_retaining_slot":
        return f"slot:{planted.slot}"
    return f"queryid:{planted.queryid}" if planted.queryid is not None else ""


@pytest.mark.parametrize("fault, playbook", [
    ("regressed_statement", "high_load"),
    ("lock_queue", "high_load"),
    ("temp_spills", "high_load"),
    ("wal_retaining_slot", "disk_space"),
])
def test_the_planted_cause_is_ranked_first(pg, clean_db, fault, playbook):
    with incidents.INCIDENTS[fault](pg.admin_conninfo(clean_db)) as planted:
        with connect(pg.conninfo(clean_db), runbook=f"incidents/{playbook}") as s:
            ev = capture(s, disk=playbook == "disk_space", **{**WINDOW, "seconds": LONGER.get(fault, WINDOW["seconds"])})
    causes = rank(ev, playbook)
    assert causes, f"no cause found for {fault}: {ev.summary()} {ev.statements}"
    top = causes[0]
    assert top.kind == fault, [(c.kind, c.object, round(c.score)) for c in causes]
    if _expected_object(planted):
        assert top.object == _expected_object(planted)
    if fault in ("regressed_statement", "temp_spills"):
        assert set(top.data["pids"]) <= set(planted.pids) and top.data["pids"]
    if fault == "lock_queue":
        assert top.data["pids"] == [planted.root_pid] and top.data["waiters"] == 1 + len(planted.waiter_pids)
    first = findings(causes, playbook, ev)[0]
    assert first.check_id == f"{playbook}.{fault}" and first.severity in ("warning", "critical")
    assert verdict(causes).startswith(f"most likely cause: {fault}")


def test_a_quiet_database_has_no_cause(pg, clean_db):
    with connect(pg.conninfo(clean_db), runbook="incidents/high_load") as s:
        ev = capture(s, disk=True, **WINDOW)
    for playbook in ("high_load", "disk_space"):
        causes = rank(ev, playbook)
        assert not [c for c in causes if c.severity in ("warning", "critical")], causes
        out = findings(causes, playbook, ev)
        assert out[0].check_id == f"{playbook}.nothing_wrong" and out[0].severity == "ok"
        assert verdict(causes).startswith("nothing is wrong")
