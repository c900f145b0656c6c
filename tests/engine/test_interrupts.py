"""Ctrl-C, SIGTERM and kill -9 of the real CLI: the running cell stops, nothing runs after it.

A private runbook whose second cell works "forever" (a counter in a file, the kernel's pid in
another) stands for an apply; no database is needed to see what the engine does with the
signal. The archive test at the end does the same to `monthly/archive_old_data` on a big clone.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from clihelpers import run_dir_of

WORK = """
import os, pathlib, time
here = pathlib.Path(workdir)
(here / "kernel.pid").write_text(str(os.getpid()))
n = 0
while True:
    n += 1
    (here / "counter").write_text(str(n))
    time.sleep(0.02)
"""


def _write_runbook(root: Path, workdir: Path) -> None:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell(f"workdir = {str(workdir)!r}  # where the cell leaves its traces")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(WORK), nbformat.v4.new_code_cell(
        "import pathlib\npathlib.Path(workdir, 'after').write_text('ran')")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["pgrunbooks"] = {"group": "test", "title": "Works until stopped", "mutates": True}
    (root / "test").mkdir(parents=True)
    nbformat.write(nb, root / "test" / "forever.ipynb")


@pytest.fixture
def forever(tmp_path):
    """(workdir, env, start): ``start()`` launches `pgrunbooks run test/forever` and waits
    until its second cell is counting."""
    root, work, out = tmp_path / "runbooks", tmp_path / "work", tmp_path / "reports"
    work.mkdir()
    _write_runbook(root, work)
    env = dict(os.environ, PGRUNBOOKS_RUNBOOKS=str(root), PLOOMBER_STATS_ENABLED="false")
    procs: list[subprocess.Popen] = []

    def start() -> subprocess.Popen:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pgrunbooks", "run", "test/forever", "--out", str(out)],
            env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        procs.append(proc)
        deadline = time.monotonic() + 90
        while not (work / "counter").exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the cell never started"
            time.sleep(0.05)
        return proc

    yield work, out, start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    pid_file = work / "kernel.pid"
    if pid_file.exists():
        try:
            os.kill(int(pid_file.read_text()), signal.SIGKILL)
        except ProcessLookupError:
            pass


def _running(pid: int) -> bool:
    """Whether ``pid`` still runs (an exited orphan may stay a zombie until init reaps it)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


def _gone(pid: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not _running(pid):
            return True
        time.sleep(0.02)
    return False


def _counter(work: Path) -> int:
    return int((work / "counter").read_text() or 0)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["sigint", "sigterm"])
def test_one_signal_stops_the_running_cell_writes_the_report_and_exits_130(forever, signum):
    work, out, start = forever
    proc = start()
    kernel = int((work / "kernel.pid").read_text())
    proc.send_signal(signum)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert not (work / "after").exists(), "no cell runs after the interrupted one"
    stopped = _counter(work)
    time.sleep(0.3)
    assert _counter(work) == stopped, "the cell went on after the run ended"
    assert _gone(kernel, 2.0), "the kernel survived the run"
    run_dir = run_dir_of(out)
    nb = nbformat.read(run_dir / "test-forever.ipynb", as_version=4)
    marked = [i for i, c in enumerate(nb.cells) if c.get("metadata", {}).get("papermill", {}).get("exception")]
    working = next(c for c in nb.cells if "while True" in c.source)
    assert marked and nb.cells[marked[0]] is working, "the interrupted cell is the one marked"
    assert any(o.get("ename") == "KeyboardInterrupt" for o in working.outputs)
    assert (run_dir / "test-forever.html").is_file()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["runbooks"][0]["error"]["ename"] == "KeyboardInterrupt"


def test_kill_9_of_the_cli_stops_its_kernel_at_once(forever):
    work, _out, start = forever
    proc = start()
    kernel = int((work / "kernel.pid").read_text())
    proc.kill()
    killed_at = time.monotonic()
    # ipykernel alone notices an orphaning once a second; the death signal stops it at once
    assert _gone(kernel, 2.0), "the orphaned kernel survived its CLI by 2 s"
    assert time.monotonic() - killed_at < 0.9, "the kernel lived on until ipykernel's parent poll"
    stopped = _counter(work)
    time.sleep(0.3)
    assert _counter(work) == stopped, "the cell went on after its CLI was killed"
    proc.communicate(timeout=30)
