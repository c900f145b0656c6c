"""Client binaries chosen by the server's major version, and the dashboard record for hosted projects.
Version-independent: first server only."""

from __future__ import annotations

import pytest

from pgrunbooks.backup import binaries, drills
from pgrunbooks.errors import PreconditionError
from pgrunbooks.sandbox import wheel_bin_dir


def test_binaries_match_the_server_major(first_pg):
    chosen = binaries.for_server(first_pg.version)
    assert chosen.major == first_pg.major and binaries.tool_major(chosen.bin_dir) == first_pg.major
    with pytest.raises(PreconditionError, match="the server is 14") as caught:
        binaries.for_server(140005, wheel_bin_dir())
    assert "pg_bin" in caught.value.hint


def test_password_goes_to_the_environment_not_the_command_line(first_pg):
    dsn, env = binaries.client_env("host=db.example.com dbname=app user=backup_reader password=s3cr3t-value")
    assert "s3cr3t" not in dsn and env["PGPASSWORD"] == "s3cr3t-value"


def test_dashboard_check_is_recorded_with_its_rpo(first_pg, tmp_path):
    entry = drills.record_dashboard_check(tmp_path, checked_at="2026-01-02T09:00:00Z",
                                          latest_backup="2026-01-02T03:00:00+00:00")
    assert entry["rpo_seconds"] == 6 * 3600 and entry["verdict"] == "pass"
    assert drills.read(tmp_path)[-1]["kind"] == "dashboard_check"


def test_a_backup_through_an_env_dsn_with_a_password_keeps_no_trace_of_it(first_pg, source_db, tmp_path,
                                                                          monkeypatch):
    import secrets

    from pgrunbooks.backup.dump import backup_database

    role, password = "bk_secret_reader", f"Pw-{secrets.token_hex(12)}"
    with first_pg.connect(source_db) as conn:
        conn.execute(f"drop role if exists {role}")
        conn.execute(f"create role {role} login bypassrls password '{password}'")
        conn.execute(f"grant pg_read_all_data to {role}")
    try:
        monkeypatch.setenv("BK_DSN", f"postgresql://{role}:{password}@127.0.0.1:{first_pg.port}/{source_db}")
        backup = backup_database("env:BK_DSN", backup_dir=tmp_path, keep=None)
        assert backup.manifest["tables"]
        for path in tmp_path.rglob("*"):
            if path.is_file():
                assert password.encode() not in path.read_bytes(), path
    finally:
        with first_pg.connect(source_db) as conn:
            conn.execute(f"drop role {role}")
