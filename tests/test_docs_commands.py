"""Every ``pgrunbooks`` command shown in README.md and docs/*.md runs as documented.

The ```bash blocks are read as a shell would (comments dropped, backslash continuations
joined, words split with shlex) and each ``pgrunbooks …`` line is executed, in document order,
against one sandbox of the test's own (its own ``PGRUNBOOKS_HOME``, seeded by the README's own
``sandbox seed`` line). Only the commands that need production are left out, each with its
reason, and that list is asserted so it cannot grow unnoticed. Version-independent and a few
minutes of kernels: it runs once, on the first server.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from pgrunbooks.sandbox import Sandbox

PROJECT = Path(__file__).resolve().parents[1]
DOCUMENTS = [PROJECT / "README.md", *sorted((PROJECT / "docs").glob("*.md"))]
_BASH_BLOCK = re.compile(r"^```bash\n(.*?)^```", re.MULTILINE | re.DOTALL)

#: commands that cannot run here, and why (asserted: each must still appear in the docs)
NEEDS_PRODUCTION = {
    "pgrunbooks run monthly/reindex --target service:victorysync-prod --show-code":
        "a libpq service of the production database (pg_service.conf, ~/.pgpass)",
    "pgrunbooks suite weekly --jobs 2 --target env:VICTORYSYNC_DSN --out /var/lib/pgrunbooks/reports":
        "the production DSN in $VICTORYSYNC_DSN and the scheduler's reports directory",
    "pgrunbooks check --target service:victorysync-prod --format json --threshold dead_tuples.warning=0.1":
        "a libpq service of the production database (pg_service.conf, ~/.pgpass)",
}
#: commands shown with an example value that only a real dry run prints (the plan fingerprint);
#: tests/actions run the printed apply commands verbatim instead
NEEDS_A_PLAN = {
    "weekly/vacuum_analyze": "its plan_fingerprint=k3v7q2m4xw5a is an example: the dry run prints the real one",
}
#: exit codes the docs promise: 0, or 1 when findings reach --fail-on; these never find anything
ALWAYS_ZERO = ("pgrunbooks sandbox", "pgrunbooks list", "pgrunbooks check --list")


def documented_commands() -> list[tuple[str, str]]:
    """``(document, command line)`` for every ``pgrunbooks`` line of every ```bash block."""
    found = []
    for doc in DOCUMENTS:
        for block in _BASH_BLOCK.findall(doc.read_text()):
            for line in block.replace("\\\n", " ").splitlines():
                words = shlex.split(line, comments=True)
                if words[:1] == ["pgrunbooks"]:
                    found.append((doc.name, shlex.join(words)))
    return found


def _skip_reason(command: str) -> str | None:
    if command in NEEDS_PRODUCTION:
        return NEEDS_PRODUCTION[command]
    if "plan_fingerprint=" in command and "dry_run=false" in command:
        return next((why for name, why in NEEDS_A_PLAN.items() if name in command), None)
    return None


def test_the_skipped_commands_are_exactly_the_listed_ones():
    commands = [c for _, c in documented_commands()]
    assert len(commands) >= 15
    skipped = {c for c in commands if _skip_reason(c)}
    assert {c for c in skipped if c in NEEDS_PRODUCTION} == set(NEEDS_PRODUCTION)
    assert len(skipped - set(NEEDS_PRODUCTION)) == len(NEEDS_A_PLAN)


def test_every_documented_command_runs(first_pg, tmp_path):
    pg = first_pg
    home = Path(tempfile.mkdtemp(prefix="pgrb-docs-"))
    home.chmod(0o755)
    (tmp_path / "params").symlink_to(PROJECT / "params")  # `-f params/…` as from the project root
    env = {k: v for k, v in os.environ.items() if k != "PGRUNBOOKS_RUNBOOKS"}
    env.update(PGRUNBOOKS_HOME=str(home), PLOOMBER_STATS_ENABLED="false", COLUMNS="200")
    sandbox = Sandbox(home, pg_bin=pg.sandbox.pg_bin)  # the server version under test
    sandbox.start()
    results = []
    try:
        for doc, command in documented_commands():
            if _skip_reason(command):
                continue
            proc = subprocess.run(
                [sys.executable, "-m", "pgrunbooks", *shlex.split(command)[1:]], env=env, cwd=tmp_path,
                stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600,
            )
            results.append((doc, command, proc.returncode, proc.stderr[-1500:]))
            if command.startswith("pgrunbooks sandbox stop"):
                sandbox.start()  # the next commands need it running again
    finally:
        sandbox.stop()
        shutil.rmtree(home, ignore_errors=True)
    wrong = [
        (doc, command, rc, err) for doc, command, rc, err in results
        if rc not in ((0,) if command.startswith(ALWAYS_ZERO) else (0, 1))
    ]
    assert not wrong, "\n\n".join(f"{doc}: `{c}` exited {rc}\n{err}" for doc, c, rc, err in wrong)
    assert any(c.startswith("pgrunbooks run weekly/index_health -f params/sandbox.yaml") for _, c, _, _ in results)
