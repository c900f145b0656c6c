"""No secret in any artifact: a suite runs through ``env:VAR`` targets whose DSNs carry real
passwords (one valid, over TCP with scram; one to a server that never answers), then every
file the run wrote, stdout and stderr are searched for the passwords.

The same executed suite shows that one failing runbook (and one unreachable target) never
stops the others, and that an unreachable target fails within its connect timeout.
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from urllib.parse import quote

import pytest
from psycopg import sql

from clihelpers import HangServer, cli_env, make_runbook_db, run_cli, run_dir_of


@pytest.fixture(scope="module")
def secret_suite(pg, first_server, tmp_path_factory):
    first_server(pg)
    db = make_runbook_db(pg)
    role = f"rb_secret_{uuid.uuid4().hex[:8]}"
    password = f"Pw-{secrets.token_hex(12)}"
    hang_password = f"Hang-{secrets.token_hex(12)}"
    with pg.connect(db) as conn:
        conn.execute(sql.SQL("create role {} login password {}").format(sql.Identifier(role), sql.Literal(password)))
        conn.execute(sql.SQL("grant pg_monitor to {}").format(sql.Identifier(role)))
    hang = HangServer()
    out = tmp_path_factory.mktemp("secret-run")
    suite = out / "secret-suite.yaml"
    suite.write_text(
        "params:\n"
        "  target: env:PGRB_SECRET_DSN\n"
        "runbooks:\n"
        "  - fixtures/findings\n"
        "  - fixtures/failing\n"
        "  - name: fixtures/findings\n"
        "    params: {target: env:PGRB_SECRET_HANG, with_chart: false}\n"
    )
    env = cli_env(
        pg,
        PGRB_SECRET_DSN=f"host=127.0.0.1 port={pg.port} dbname={db} user={role} password={password} sslmode=disable",
        PGRB_SECRET_HANG=f"postgresql://u:{hang_password}@127.0.0.1:{hang.port}/x?connect_timeout=2",
    )
    reports = out / "reports"
    started = time.monotonic()
    proc = run_cli(["-v", "suite", str(suite), "--out", str(reports), "--jobs", "2", "--fail-on", "warning"], env, cwd=out)
    seconds = time.monotonic() - started
    hang.close()
    yield {
        "proc": proc, "run": run_dir_of(reports), "role": role, "seconds": seconds,
        "passwords": [password, hang_password], "accepted": hang.accepted,
    }
    with pg.connect(db) as conn:
        conn.execute(sql.SQL("drop owned by {}").format(sql.Identifier(role)))
    pg.drop_database(db)
    with pg.connect("postgres") as conn:
        conn.execute(sql.SQL("drop role if exists {}").format(sql.Identifier(role)))


def _texts(run):
    for path in sorted(run.rglob("*")):
        if path.is_file():
            yield str(path.relative_to(run)), path.read_bytes().decode("utf-8", "replace")


def test_no_password_in_any_artifact_stdout_or_stderr(secret_suite):
    run = secret_suite["run"]
    kinds = {p.suffix for p in run.iterdir()}
    assert {".ipynb", ".html", ".json", ".log"} <= kinds, kinds
    sources = list(_texts(run)) + [("stdout", secret_suite["proc"].stdout), ("stderr", secret_suite["proc"].stderr)]
    for password in secret_suite["passwords"]:
        for variant in {password, quote(password, safe="")}:
            leaks = [name for name, text in sources if variant in text]
            assert not leaks, f"password found in {leaks}"


def test_env_target_connected_with_its_password(secret_suite):
    doc = json.loads((secret_suite["run"] / "fixtures-findings.findings.json").read_text())
    assert doc["status"] == "ok" and doc["target"] == "env:PGRB_SECRET_DSN"
    assert f"fixture.role:{secret_suite['role']}" in {f["key"] for f in doc["findings"]}


def test_one_failing_runbook_does_not_stop_the_others(secret_suite):
    proc, run = secret_suite["proc"], secret_suite["run"]
    assert proc.returncode == 2
    summary = json.loads((run / "summary.json").read_text())
    assert [(r["runbook"], r["status"]) for r in summary["runbooks"]] == [
        ("fixtures/findings", "ok"), ("fixtures/failing", "failed"), ("fixtures/findings", "failed"),
    ]
    index = (run / "index.html").read_text()
    for stem in ("fixtures-findings", "fixtures-failing", "fixtures-findings-2"):
        assert (run / f"{stem}.html").is_file() and f'href="{stem}.html"' in index


def test_unreachable_target_fails_within_its_connect_timeout(secret_suite):
    doc = json.loads((secret_suite["run"] / "fixtures-findings-2.findings.json").read_text())
    assert doc["error"]["ename"] == "ConnectError"
    assert "cannot connect to target env:PGRB_SECRET_HANG after 2." in doc["error"]["evalue"]
    assert doc["seconds"] < 15, "kernel start + the 2 s connect timeout"
    assert secret_suite["accepted"] >= 1
    out = secret_suite["proc"].stdout
    assert "fixtures/findings: FAILED — ConnectError: cannot connect to target env:PGRB_SECRET_HANG" in out
    assert "Traceback" not in out and "Traceback" not in secret_suite["proc"].stderr
    html = (secret_suite["run"] / "fixtures-findings-2.html").read_text()
    assert "Traceback (most recent call last)" not in html, "one message, not a traceback wall"


def test_a_logged_suite_says_ran_or_failed_per_runbook_not_a_severity(secret_suite):
    """Run from cron (no terminal), each finished runbook is one line whose status word is `ran`/`FAILED`."""
    lines = [line for line in secret_suite["proc"].stderr.splitlines() if line.startswith("[")]
    assert lines, secret_suite["proc"].stderr
    assert all(line.split(": ")[-1].split(" (")[0] in ("ran", "FAILED") for line in lines), lines
