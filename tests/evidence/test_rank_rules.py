"""The ranking rules on hand-made evidence (no server): the causes no test can plant cheaply (a failing
archiver, an anti-wraparound autovacuum), the lock tree's roots, the order across kinds, bad names."""

from __future__ import annotations

import json

import pytest

from pgrunbooks.errors import UsageError
from pgrunbooks.evidence import Evidence, findings, rank, verdict
from pgrunbooks.evidence.capture import lock_tree

MB = 1024 * 1024


def evidence(**fields) -> Evidence:
    base = dict(started_at="2026-01-01T00:00:00+00:00", seconds=1.0, server_version=180000, datname="db", sample_count=10)
    return Evidence(**{**base, **fields})


def session(pid, **kw):
    return {"pid": pid, "role": "app", "application": "victorysync/api", "backend_type": "client backend", "database": "db",
            "seen": 10, "active": 10, "waits": {}, "states": {}, "query_id": None, "query": "", "max_xact_age_s": None,
            "max_query_age_s": None, **kw}


def test_the_lock_tree_walks_every_waiter_to_its_root():
    rows = [
        {"pid": 1, "blocked_by": [], "relation": None},
        {"pid": 2, "blocked_by": [1], "relation": "calls"},
        {"pid": 3, "blocked_by": [2], "relation": "calls"},
        {"pid": 4, "blocked_by": [2, 1], "relation": "calls"},
        {"pid": 7, "blocked_by": [8], "relation": "x"}, {"pid": 8, "blocked_by": [7], "relation": "x"},  # a deadlock
    ]
    tree = {r["pid"]: r for r in lock_tree(rows)}
    assert [(tree[p]["root"], tree[p]["depth"]) for p in (1, 2, 3, 4)] == [(1, 0), (1, 1), (1, 2), (1, 2)]
    assert tree[1]["waiters"] == 3 and tree[2]["waiters"] == 0
    assert {tree[7]["root"], tree[8]["root"]} <= {7, 8}, "a cycle ends the walk instead of looping"


def test_a_lock_queue_outranks_a_regression_which_outranks_checkpoints():
    ev = evidence(
        lock_tree=lock_tree([{"pid": 1, "blocked_by": [], "relation": None, "state": "idle in transaction", "xact_age_s": 90},
                             {"pid": 2, "blocked_by": [1], "relation": "public.calls"}]),
        statements=[{"queryid": 42, "query": "select 1", "calls": 50, "total_ms": 500.0, "mean_ms": 10.0, "calls_before": 400,
                     "mean_ms_before": 0.5, "rows": 50, "temp_blks_written": 0, "shared_blks_read": 0, "active_samples": 5}],
        sessions=[session(5, query_id=42)],
        database={"checkpoints_requested": 2},
    )
    causes = rank(ev, "high_load")
    assert [c.kind for c in causes] == ["lock_queue", "regressed_statement", "checkpoints"]
    assert causes[1].data["pids"] == [5] and causes[1].action == "explain"
    assert verdict(causes) == "most likely cause: lock_queue (pid:1); 1 other cause(s)"
    assert [f.check_id for f in findings(causes, "high_load", ev)][:2] == ["high_load.lock_queue", "high_load.regressed_statement"]


def test_an_anti_wraparound_autovacuum_is_named_and_never_to_be_cancelled():
    ev = evidence(sessions=[session(9, backend_type="autovacuum worker",
                                    query="autovacuum: VACUUM public.calls (to prevent wraparound)")])
    (cause,) = rank(ev, "high_load")
    assert cause.kind == "antiwraparound_autovacuum" and cause.action == "wait"


def test_a_failing_archiver_comes_before_a_slot_and_bloat():
    ev = evidence(disk={
        "archiver": {"archive_mode": "on", "failing": True, "failed_count": 3, "last_failed_wal": "000000010000000000000042"},
        "slots": [{"slot": "cdc", "slot_type": "logical", "active": False, "active_pid": None, "wal_status": "reserved",
                   "retained_bytes": 200 * MB, "restart_lsn": "0/1"}],
        "largest_tables": [{"table": "public.calls", "total_bytes": 900 * MB, "dead_tuples": 10, "dead_bytes": 100 * MB}],
        "wal": {"files": 10, "bytes": 160 * MB, "max_wal_bytes": 1024 * MB}, "temp_files": {"files": 0, "bytes": 0},
    })
    assert [c.kind for c in rank(ev, "disk_space")] == ["archiver_failing", "wal_retaining_slot", "bloat"]
    assert rank(ev, "disk_space")[1].action == "drop_slot"


def test_an_active_slot_within_its_reserve_is_no_cause():
    ev = evidence(disk={"slots": [{"slot": "standby", "slot_type": "physical", "active": True, "active_pid": 77,
                                   "wal_status": "reserved", "retained_bytes": 500 * MB, "restart_lsn": "0/1"}]})
    assert rank(ev, "disk_space") == []
    assert findings([], "disk_space", ev)[0].check_id == "disk_space.nothing_wrong"


def test_unknown_playbooks_and_thresholds_are_usage_errors_and_thresholds_apply():
    with pytest.raises(UsageError):
        rank(evidence(), "nosuch")
    with pytest.raises(UsageError):
        rank(evidence(), "high_load", nosuch=1)
    ev = evidence(statements=[{"queryid": 1, "query": "select 1", "calls": 5, "total_ms": 50.0, "mean_ms": 10.0,
                               "calls_before": 100, "mean_ms_before": 4.0, "rows": 5, "temp_blks_written": 0,
                               "shared_blks_read": 0, "active_samples": 0}])
    assert rank(ev, "high_load") == [], "2.5x slower is under the default ratio"
    assert [c.kind for c in rank(ev, "high_load", regression_ratio=2)] == ["regressed_statement"]


def test_the_json_is_compact_and_capped():
    ev = evidence(sessions=[session(p) for p in range(500)],
                  samples=[{"t": i / 100, "state": "active", "wait_event_type": None, "wait_event": None, "query_id": 1,
                            "backend_type": "client backend", "sessions": 3, "xact_age_s": 0.1} for i in range(1000)])
    doc = json.loads(ev.to_json())
    assert len(doc["sessions"]) == 200 and len(doc["activity"]) == 20 and doc["wait_share"] == {"CPU": 300.0}
