"""Kernels started ahead of their runbooks (pgrunbooks.engine.kernels): a pre-started kernel must be
indistinguishable from a fresh one to the runbook, and a suite must leave no kernel behind.

Real kernels (ipykernel processes); no database is needed to tell where a kernel runs."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import nbformat
import pytest

from pgrunbooks.engine.catalog import load_runbook
from pgrunbooks.engine.execute import run_notebook
from pgrunbooks.engine.kernels import KernelPool, warm_modules
from pgrunbooks.engine.prepare import prepare
from pgrunbooks.engine.results import Options

PROJECT = Path(__file__).resolve().parents[2]


def _pid(kernel) -> int:
    return kernel.km.provisioner.process.pid


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A killed child not yet reaped is a zombie: gone for every practical purpose.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except OSError:
        return False


@pytest.fixture
def probe(tmp_path: Path) -> Path:
    """A runbook that reports its working directory, what its namespace holds before its own
    imports, and which library modules are already loaded; it writes a line to its stderr."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["pgrunbooks"] = {"title": "Probe", "purpose": "where does it run"}
    params = nbformat.v4.new_code_cell("label = 'probe'  # a label")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [
        params,
        nbformat.v4.new_code_cell(
            "import os, sys, json\n"
            "os.write(2, b'probe stderr\\n')\n"
            "print(json.dumps({'cwd': os.getcwd(),\n"
            "  'names': sorted(k for k in globals() if k in ('pgrunbooks', 'rb', 'warm', 'importlib')),\n"
            "  'loaded': 'pgrunbooks.notebook' in sys.modules}))"
        ),
        nbformat.v4.new_code_cell("from pgrunbooks import notebook as rb"),
    ]
    folder = tmp_path / "runbooks" / "probes"
    folder.mkdir(parents=True)
    path = folder / "probe.ipynb"
    nbformat.write(nb, path)
    return path


def _report(executed) -> dict:
    (text,) = [o["text"] for c in executed.nb.cells for o in c.get("outputs", []) if o.get("name") == "stdout"]
    return json.loads(text)


def test_warm_modules_are_the_library_modules_a_runbook_imports(probe):
    assert warm_modules(probe) == ["pgrunbooks", "pgrunbooks.notebook"]
    health = warm_modules(PROJECT / "runbooks" / "daily" / "health_overview.ipynb")
    assert "pgrunbooks.notebook" in health and all(m.startswith("pgrunbooks") for m in health)


def test_a_prestarted_kernel_looks_fresh_to_the_runbook(probe, tmp_path):
    """Started in the runbook's folder, its imports warm, nothing bound in its namespace,
    the first cell still execution 1."""
    runbook = load_runbook(probe, tmp_path / "runbooks")
    prepared = prepare(runbook, {})
    with KernelPool([probe, probe], "python3", ahead=1) as pool:
        first = run_notebook(prepared, Options(), lambda: pool.take(0))
        second = run_notebook(prepared, Options(), lambda: pool.take(1))  # started during the first
    for executed in (first, second):
        assert executed.error is None, executed.error
        report = _report(executed)
        assert report == {"cwd": str(probe.parent), "names": [], "loaded": True}
        assert executed.nb.cells[0].execution_count == 1
        assert "probe stderr" in executed.kernel_text, "the kernel's stderr reaches the run's log"


def test_kernels_nobody_took_are_killed_on_close(probe):
    pool = KernelPool([probe] * 3, "python3", ahead=2)
    taken = pool.take(0)
    ahead = [_pid(f.result()) for f in pool._started.values()]
    assert len(ahead) == 2 and all(_running(pid) for pid in ahead)
    pool.close()
    assert not any(_running(pid) for pid in ahead)
    assert _running(_pid(taken)), "the caller owns what it took"
    taken.discard()
    with pytest.raises(RuntimeError):
        pool.take(1)


def test_a_prestarted_kernel_that_died_is_replaced(probe, tmp_path):
    runbook = load_runbook(probe, tmp_path / "runbooks")
    with KernelPool([probe, probe], "python3", ahead=1) as pool:
        pool.take(0).discard()
        dead = pool._started[1].result()
        os.kill(_pid(dead), signal.SIGKILL)  # say, the OOM killer, while the first runbook ran
        deadline = time.monotonic() + 10
        while dead.km.provisioner.process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        executed = run_notebook(prepare(runbook, {}), Options(), lambda: pool.take(1))
    assert executed.error is None, executed.error
