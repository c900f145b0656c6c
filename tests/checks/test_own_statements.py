"""Top and slow statements rank the application's statements, never pgrunbooks' own."""

from __future__ import annotations

import json

from clihelpers import cli_env, run_cli

from pgrunbooks.db import QUERY_MARKER, connect

#: every threshold at its loosest, so any statement recorded at all is reported
LOOSE = [
    "slow_statements.warning=0.001", "slow_statements.critical=100000", "slow_statements.min_calls=1",
    "top_statements.share=0", "top_statements.min_total_ms=0", "top_statements.report=50",
]


def test_statement_checks_leave_out_our_own_sessions(pg, clean_clone, monkeypatch):
    fresh_db = clean_clone  # seeded: the Supabase roles and extensions.pg_stat_statements
    with pg.connect(fresh_db) as conn:
        # Two tables, so the two statements differ in pg_stat_statements' queryid (constants and
        # comments do not count) and keep their names in its normalised text.
        conn.execute("create table public.app_statement_probe (x int); insert into public.app_statement_probe values (1)")
        conn.execute("create table public.own_statement_probe (x int); insert into public.own_statement_probe values (1)")
        conn.execute("grant select on public.own_statement_probe to postgres")
        conn.execute("select extensions.pg_stat_statements_reset()")
        for _ in range(6):  # the application: a plain client, no marker
            conn.execute("select pg_sleep(0.01) from public.app_statement_probe")
    monkeypatch.setenv("PGRUNBOOKS_HOME", str(pg.home))
    with connect(f"local:{fresh_db}", runbook="test/own") as session:
        for _ in range(6):  # pgrunbooks' own work: slower, so it would rank first
            session.fetch("select pg_sleep(0.05) from public.own_statement_probe")
        recorded = [r["query"] for r in session.fetch(
            "select query from extensions.pg_stat_statements where query like %s", ("%own_statement_probe%",))]
    assert recorded and all(q.endswith(QUERY_MARKER) for q in recorded)  # the marker survives normalisation

    args = ["check", "--target", f"local:{fresh_db}", "--check", "top_statements,slow_statements",
            "--format", "json", "--fail-on", "none"]
    for assignment in LOOSE:
        args += ["--threshold", assignment]
    out = run_cli(args, cli_env(pg), cwd=pg.home)
    assert out.returncode == 0, out.stderr
    findings = json.loads(out.stdout)["findings"]
    shown = {c: " ".join(f"{f['title']} {f.get('detail')}" for f in findings if f["check_id"] == c)
             for c in ("top_statements", "slow_statements")}
    for check_id in ("top_statements", "slow_statements"):
        assert "app_statement_probe" in shown[check_id], findings
        assert "own_statement_probe" not in shown[check_id]
        assert "set_config" not in shown[check_id]  # the session's SET LOCAL timeouts
