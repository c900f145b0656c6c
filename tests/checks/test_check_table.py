"""``pgrunbooks check`` as a person reads it: why a check was skipped and what enables it;
``--list`` with a header row and thresholds in their units."""

from __future__ import annotations

from clihelpers import cli_env, run_cli

LIMITED = "pgrb_test_table_reader"


def test_skipped_checks_say_why_and_what_enables_them(pg, faults_db):
    with pg.connect(faults_db) as admin:
        admin.execute(f"drop role if exists {LIMITED}")
        admin.execute(f"create role {LIMITED} login")
    try:
        args = ["check", "--target", "env:PGRB_LIMITED", "--check", "connections,slow_statements", "--fail-on", "none"]
        out = run_cli(args, cli_env(pg, PGRB_LIMITED=pg.conninfo(faults_db, user=LIMITED)), cwd=pg.home)
    finally:
        with pg.connect(faults_db) as admin:
            admin.execute(f"drop role {LIMITED}")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    skipped = {line.split()[1]: i for i, line in enumerate(lines) if line.startswith("skipped")}
    assert set(skipped) == {"connections", "slow_statements"}, out.stdout
    connections = lines[skipped["connections"]]
    assert "Connections: skipped" not in connections
    assert f"role {LIMITED} lacks the privileges of pg_read_all_stats" in connections
    assert lines[skipped["connections"] + 1].split()[:4] == ["enable:", "grant", "pg_monitor", "to"]
    assert any("enable:" in lines[skipped["slow_statements"] + 1] and word in lines[skipped["slow_statements"] + 1]
               for word in ("pg_stat_statements", "grant"))


def test_list_has_a_header_and_threshold_units(pg):
    out = run_cli(["check", "--list"], cli_env(pg), cwd=pg.home)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["check", "category", "title", "needs", "thresholds"]
    assert set(lines[1].replace(" ", "")) == {"-"}
    by_id = {line.split()[0]: line for line in lines[2:]}
    assert "warning=75%, critical=90%" in by_id["connections"]
    assert "warning=300 s, critical=1800 s" in by_id["long_running_queries"]
    assert "warning=1000 ms, critical=5000 ms" in by_id["slow_statements"]
    assert "warning=8 GiB, critical=16 GiB" in by_id["database_size"]
    assert "warning=30 days" in by_id["statements_reset_age"]
    assert "min_bytes=10 MiB" in by_id["table_bloat"]


def test_a_tenant_table_that_matches_nothing_is_exit_3_not_skipped(pg, clean_db):
    """`--threshold tenant_isolation.tenant_table=nosuch` names the user's mistake (exit 3) instead of a quiet `skipped`."""
    args = ["check", "--target", pg.conninfo(clean_db), "--check", "tenant_isolation",
            "--threshold", "tenant_isolation.tenant_table=public.nosuch"]
    out = run_cli(args, cli_env(pg), cwd=pg.home)
    assert out.returncode == 3, out.stdout + out.stderr
    assert "public.nosuch" in out.stderr and "matches no table" in out.stderr
