"""Restore drills end to end on PostgreSQL 18 and 15: the default scratch server (a second sandbox
instance) restores and passes, then disappears; kill -9 during a restore leaves the source untouched
and the copy reported incomplete; the source is never a restore target; a role that RLS would filter
cannot back up; retention by count and age; the PITR drill brings deleted rows back."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from datetime import datetime, timedelta, timezone

import psycopg
import pytest
from psycopg.rows import dict_row

from pgrunbooks.backup import drills, manifest as mf
from pgrunbooks.backup.dump import backup_database
from pgrunbooks.backup.pitr import pitr_drill
from pgrunbooks.backup.restore import restore_state, restore_test, verdict_of
from pgrunbooks.backup.retention import apply_retention
from pgrunbooks.backup.verify import verify_restored
from pgrunbooks.errors import PrivilegeError, UsageError
from pgrunbooks.findings import Finding, Severity
from pgrunbooks.sandbox import ADMIN_USER


def test_default_scratch_server_restores_passes_and_is_removed(backup):
    drill = restore_test(backup.path, jobs=2, rto_target=120)
    assert drill.verdict == "pass", [f.title for f in drill.problems]
    assert drill.target.startswith("scratch server ")
    assert drill.scratch_home is not None and not drill.scratch_home.exists()
    assert drill.verdict_finding().severity is Severity.OK


def test_verdict_is_partial_over_the_rto_target_and_fail_when_anything_differs(first_pg):
    bad = Finding("restore_test", Severity.CRITICAL, "table public.calls has 1 rows, the backup 2", "public.calls")
    warn = Finding("tenant_isolation", Severity.WARNING, "a member saw no own rows", "public.invoices:own_rows")
    assert verdict_of(complete=True, findings=[], rto_seconds=5, rto_target=10) == "pass"
    assert verdict_of(complete=True, findings=[], rto_seconds=11, rto_target=10) == "partial"
    assert verdict_of(complete=True, findings=[warn], rto_seconds=5, rto_target=10) == "partial"
    assert verdict_of(complete=True, findings=[bad], rto_seconds=5, rto_target=10) == "fail"
    assert verdict_of(complete=False, findings=[], rto_seconds=5, rto_target=10) == "fail"


def test_kill_9_during_restore_leaves_source_untouched_and_copy_incomplete(pg, backup, source_db, empty_db):
    target = pg.conninfo(empty_db, ADMIN_USER)

    def kill_once_loading(proc):
        deadline = time.monotonic() + 5
        with psycopg.connect(target, autocommit=True) as conn:
            while time.monotonic() < deadline and proc.poll() is None:
                if conn.execute("select pg_catalog.count(*) from pg_catalog.pg_class c join pg_catalog.pg_namespace n "
                                "on n.oid = c.relnamespace where n.nspname = 'public'").fetchone()[0]:
                    break
                time.sleep(0.005)
        os.kill(proc.pid, signal.SIGKILL)

    drill = restore_test(backup.path, target=target, on_restore_started=kill_once_loading)
    assert drill.verdict == "fail" and not drill.complete
    assert any("restore incomplete: pg_restore killed by signal 9" in f.title for f in drill.problems)
    assert restore_state(target) == "incomplete"
    # the source still matches its backup exactly: rows, hashes, catalog
    with psycopg.connect(pg.conninfo(source_db, ADMIN_USER), row_factory=dict_row) as conn, conn.cursor() as cur:
        assert verify_restored(cur, backup.manifest) == []


def test_the_source_database_is_never_a_restore_target(pg, backup, source_db):
    with pytest.raises(UsageError, match="source database"):
        restore_test(backup.path, target=pg.conninfo(source_db, ADMIN_USER))


def test_a_role_rls_would_filter_cannot_back_up(pg, source_db, tmp_path):
    role = "bk_reader_no_bypass"
    with pg.connect(source_db) as conn:
        conn.execute(f"drop role if exists {role}")
        conn.execute(f"create role {role} login")
        conn.execute(f"grant pg_read_all_data to {role}")
    try:
        with pytest.raises(PrivilegeError) as caught:
            backup_database(pg.conninfo(source_db, role), backup_dir=tmp_path)
        assert "BYPASSRLS" in str(caught.value) and f"alter role {role} bypassrls" in caught.value.hint
        assert not any(tmp_path.iterdir())
    finally:
        with pg.connect(source_db) as conn:
            conn.execute(f"drop role {role}")


def _fake_backup(root, source, name: str, taken: datetime):
    shutil.copytree(source, root / name)
    manifest = json.loads((root / name / mf.MANIFEST).read_text())
    manifest["snapshot_time"] = taken.isoformat()
    (root / name / mf.MANIFEST).write_text(json.dumps(manifest))


def test_retention_keeps_by_count_and_age(first_pg, backup, tmp_path):
    now = datetime.now(timezone.utc)
    for days, name in ((30, "a"), (10, "b"), (2, "c"), (0, "d")):
        _fake_backup(tmp_path, backup.path, name, now - timedelta(days=days))
    (tmp_path / "half-done").mkdir()
    os.utime(tmp_path / "half-done", (time.time() - 2 * 86400,) * 2)
    planned = apply_retention(tmp_path, keep=3, max_age_days=7, dry_run=True)
    assert {r.path.name for r in planned} == {"a", "b", "half-done"}
    assert all((tmp_path / n).exists() for n in "abcd")
    apply_retention(tmp_path, keep=3, max_age_days=7)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c", "d"]
    with pytest.raises(UsageError):
        apply_retention(tmp_path, keep=0)


@pytest.mark.slow
def test_pitr_drill_brings_the_deleted_calls_back(pg, tmp_path):
    result = pitr_drill(pg.sandbox.pg_bin, scale=0.02, record_to=tmp_path)
    assert result.calls_before > 0 and result.calls_after_delete == 0
    assert result.recovered and result.calls_recovered == result.calls_before
    assert set(result.phases) == {"seed", "base_backup", "recovery"}
    assert drills.read(tmp_path)[-1]["kind"] == "pitr_drill"
