"""Helpers the test modules share: run the real CLI in a subprocess, a database for the
fixture runbooks, and an unreachable server. (``tests/`` is on ``sys.path`` through its conftest.)

The fixtures here (``runbook_db``, ``in_process``) are used by importing them into a test
module: ``from clihelpers import runbook_db``."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]
FIXTURES = PROJECT / "tests" / "notebooks"


def ensure_runbook_role(conn) -> None:
    """Runbooks connect as ``postgres`` (like a Supabase DBA): make sure the role exists."""
    conn.execute(
        "do $$ begin if not exists (select from pg_catalog.pg_roles where rolname = 'postgres') then "
        "create role postgres login nosuperuser createrole createdb bypassrls; end if; end $$"
    )
    conn.execute("grant pg_monitor to postgres")


def make_runbook_db(pg) -> str:
    name = f"rb_{uuid.uuid4().hex[:10]}"
    pg.create_database(name)
    with pg.connect(name) as conn:
        ensure_runbook_role(conn)
        conn.execute("create table public.canary (id int primary key)")
        conn.execute("insert into public.canary values (1)")
        conn.execute("grant select on public.canary to postgres")
    return name


def cli_env(pg, **extra: str) -> dict[str, str]:
    return pg.env(PGRUNBOOKS_RUNBOOKS=str(FIXTURES), PLOOMBER_STATS_ENABLED="false", COLUMNS="200", **extra)


def run_cli(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess:
    """``python -m pgrunbooks ARGS``. A run still going after ``timeout`` fails the test with
    its output so far and where each of its threads was (the CLI dumps them on SIGUSR1)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "pgrunbooks", *args], env=env, cwd=cwd,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGUSR1)
        time.sleep(1)
        proc.kill()
        # Its kernels notice the parent is gone within about a second and close the pipes.
        out, err = proc.communicate(timeout=60)
        pytest.fail(
            f"`pgrunbooks {' '.join(args)}` still running after {timeout:g}s\n"
            f"--- stdout\n{out[-4000:]}\n--- stderr (thread stacks at the end)\n{err[-16000:]}"
        )
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def run_dir_of(out: Path) -> Path:
    dirs = sorted(p for p in out.iterdir() if p.is_dir())
    assert len(dirs) == 1, dirs
    return dirs[0]


class HangServer:
    """A TCP socket that accepts connections and never answers: an unreachable database."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._conns: list[socket.socket] = []
        self._stop = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        self.sock.settimeout(0.2)
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            self._conns.append(conn)

    def dsn(self, password: str = "never-used-pw", timeout: int = 2) -> str:
        return f"host=127.0.0.1 port={self.port} dbname=x user=u password={password} connect_timeout={timeout}"

    def close(self):
        self._stop = True
        self._thread.join(timeout=2)
        for c in self._conns:
            c.close()
        self.sock.close()


def sql_statements(text: str) -> list[str]:
    """The statements of a printed remediation, as psql runs a pasted script: ``--`` comments
    dropped, split on ``;`` outside string literals and quoted names. Text left after the last
    ``;`` (prose that is not a comment) is an error: the remediation would not paste."""
    out: list[str] = []
    current = ""
    i = 0
    while i < len(text):
        if text.startswith("--", i):
            newline = text.find("\n", i)
            i = len(text) if newline < 0 else newline
        elif text[i] in "'\"":
            quote, end = text[i], i + 1
            while True:  # a doubled quote is one quote character inside the literal or name
                end = text.index(quote, end)
                if not text.startswith(quote * 2, end):
                    break
                end += 2
            current += text[i:end + 1]
            i = end + 1
        elif text[i] == ";":
            if current.strip():
                out.append(current.strip())
            current, i = "", i + 1
        else:
            current += text[i]
            i += 1
    if current.strip():
        raise ValueError(f"not SQL (no ';' and not a '--' comment): {current.strip()!r}")
    return out


def undo_statements(text: str) -> list[str]:
    """The statements of the ``-- undo: …;`` comments of a printed remediation."""
    undo = [line.split("-- undo:", 1)[1] for line in text.splitlines() if line.lstrip().startswith("-- undo:")]
    return sql_statements("\n".join(undo))


def action_cli(pg, args: list[str], out: Path, audit_log: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    """``pgrunbooks ARGS --out OUT`` with the real runbooks, ``local`` the test server ``pg``
    and the audit log at ``audit_log`` (no ``$PGRUNBOOKS_OPERATOR``)."""
    env = pg.env(
        PGRUNBOOKS_RUNBOOKS=str(PROJECT / "runbooks"),
        PGRUNBOOKS_AUDIT_LOG=str(audit_log),
        PLOOMBER_STATS_ENABLED="false",
        COLUMNS="200",
    )
    env.pop("PGRUNBOOKS_OPERATOR", None)
    return run_cli([*args, "--out", str(out)], env, cwd=out, timeout=timeout)


def runbook_report(out: Path, runbook: str) -> dict:
    """findings.json, the executed notebook's output texts and the HTML of ``runbook`` in the one run under ``out``."""
    import json

    stem = runbook.replace("/", "-")
    folder = run_dir_of(out)
    nb = json.loads((folder / f"{stem}.ipynb").read_text())
    texts = []
    for cell in nb["cells"]:
        for output in cell.get("outputs", []):
            for value in [output.get("text", "")] + [output.get("data", {}).get(m, "") for m in ("text/markdown", "text/plain")]:
                texts.append("".join(value) if isinstance(value, list) else value)
    return {
        "findings": json.loads((folder / f"{stem}.findings.json").read_text()),
        "outputs": "\n".join(texts),
        "html": (folder / f"{stem}.html").read_text(),
    }


def printed_apply_command(outputs: str) -> list[str]:
    """The apply command a dry run printed (its own line in the outputs), split as a POSIX shell does."""
    import shlex

    commands = {line.strip() for line in outputs.splitlines() if line.strip().startswith("pgrunbooks run ")}
    assert len(commands) == 1, f"one apply command expected, found {commands or 'none'} in:\n{outputs[-3000:]}"
    return shlex.split(commands.pop())
