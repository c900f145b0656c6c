"""A restored copy verified against its backup's manifest, on PostgreSQL 18 and 15: the clean round trip
passes; missing rows, changed content, a dropped policy, a changed grant, a sequence behind its max
are each a critical finding naming the object; tampered or truncated files fail naming the table."""

from __future__ import annotations

import shutil

import psycopg
import pytest
from psycopg.rows import dict_row

from pgrunbooks.backup import drills, manifest as mf
from pgrunbooks.backup.restore import restore_test
from pgrunbooks.backup.verify import verify_restored
from pgrunbooks.findings import Severity
from pgrunbooks.sandbox import ADMIN_USER


def _verify(pg, db: str, manifest: dict) -> dict[str, list]:
    with psycopg.connect(pg.conninfo(db, ADMIN_USER), row_factory=dict_row) as conn, conn.cursor() as cur:
        found = verify_restored(cur, manifest)
    assert all(f.severity is Severity.CRITICAL for f in found)
    by_object: dict[str, list] = {}
    for f in found:
        by_object.setdefault(f.object, []).append(f)
    return by_object


def _break(pg, db: str, *statements: str) -> None:
    with pg.connect(db) as conn:
        for statement in statements:
            conn.execute(statement)


def test_manifest_describes_the_dump(backup):
    m = backup.manifest
    tables = {t["name"]: t for t in m["tables"]}
    assert {"public.calls", "public.organizations", "auth.users"} <= set(tables)
    assert tables["public.calls"]["method"] == "sampled" and tables["public.organizations"]["method"] == "exact"
    assert all(f["sha256"] and f["bytes"] > 0 for f in m["files"])
    assert any(f["table"] == "public.calls" for f in m["files"])
    assert m["roles_source"] == "pg_dumpall" and (backup.path / mf.ROLES_FILE).is_file()
    assert {"policies", "grants", "definer_functions", "sequences", "extensions", "rls"} <= set(m["catalog"])
    assert "password" not in (backup.path / mf.MANIFEST).read_text().lower()


def test_clean_round_trip_passes(restored):
    _, drill = restored
    assert drill.verdict == "pass", [f.title for f in drill.problems]
    assert drill.complete and not drill.problems
    assert set(drill.phases) == {"files", "server", "restore", "verify"}
    assert drill.rpo_seconds is not None and drill.rpo_seconds >= 0
    recorded = drills.read(drill.backup.parent)
    assert recorded and recorded[-1]["verdict"] == "pass" and recorded[-1]["kind"] == "restore_test"


def test_missing_rows_in_one_table_fail_naming_it(pg, backup, tampered):
    _break(pg, tampered, "delete from public.invoices where ctid in (select ctid from public.invoices limit 3)")
    found = _verify(pg, tampered, backup.manifest)
    assert set(found) == {"public.invoices"}
    assert "rows, the backup" in found["public.invoices"][0].title


def test_changed_content_fails_in_exact_and_sampled_tables(pg, backup, tampered):
    calls = next(t for t in backup.manifest["tables"] if t["name"] == "public.calls")
    start = calls["samples"][0]["start"]
    _break(pg, tampered,
           f"update public.calls set duration = duration + 1 where id = '{start}'",
           "update public.organizations set name = name || ' (edited)' "
           "where id = (select min(id::text)::uuid from public.organizations)")
    found = _verify(pg, tampered, backup.manifest)
    assert set(found) == {"public.calls", "public.organizations"}
    assert "sampled key ranges differ" in found["public.calls"][0].title
    assert "different content" in found["public.organizations"][0].title


def test_dropped_policy_fails_naming_it(pg, backup, tampered):
    _break(pg, tampered, "drop policy calls_tenant_isolation on public.calls")
    found = _verify(pg, tampered, backup.manifest)
    assert set(found) == {"public.calls.calls_tenant_isolation"}
    assert "missing" in found["public.calls.calls_tenant_isolation"][0].title


def test_changed_grant_fails_naming_the_object(pg, backup, tampered):
    _break(pg, tampered, "revoke select on public.phone_numbers from authenticated")
    found = _verify(pg, tampered, backup.manifest)
    assert set(found) == {"table public.phone_numbers"}
    assert "lost authenticated:SELECT" in found["table public.phone_numbers"][0].title


def test_sequence_behind_its_max_fails_naming_it(pg, backup, tampered):
    _break(pg, tampered, "select pg_catalog.setval('public.db_metrics_id_seq', 5)")
    found = _verify(pg, tampered, backup.manifest)
    assert set(found) == {"public.db_metrics_id_seq"}
    titles = " | ".join(f.title for f in found["public.db_metrics_id_seq"])
    assert "behind max(public.db_metrics.id)" in titles and "the backup had it at" in titles


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_tampered_or_truncated_file_fails_naming_the_table(pg, backup, tmp_path, empty_db, damage):
    copy = tmp_path / backup.path.name
    shutil.copytree(backup.path, copy)
    entry = next(f for f in backup.manifest["files"] if f["table"] == "public.calls")
    path = copy / entry["path"]
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if damage == "truncate" else data[:-1] + bytes([data[-1] ^ 1]))
    drill = restore_test(copy, target=pg.conninfo(empty_db, ADMIN_USER))
    assert drill.verdict == "fail" and not drill.complete
    named = [f for f in drill.problems if f.object == "public.calls"]
    assert named and ("truncated" in named[0].title if damage == "truncate" else "sha256" in named[0].title)
    assert drills.read(tmp_path)[-1]["verdict"] == "fail"


def test_tenant_probe_on_the_restored_copy(pg, backup, restored, tampered):
    from pgrunbooks.backup.verify import tenant_probe

    expected = backup.manifest["tenant_probe"]
    assert expected == {"ran": True, "flagged": {}}
    assert tenant_probe(pg.conninfo(restored[0], ADMIN_USER), expected) == []
    _break(pg, tampered, "create policy restore_leak on public.calls for select to authenticated using (true)")
    leaks = tenant_probe(pg.conninfo(tampered, ADMIN_USER), expected)
    assert leaks and all(f.severity is Severity.CRITICAL for f in leaks)
    assert any("public.calls" in f.object and "differs from the source" in f.title for f in leaks), leaks
