"""Kernels for runbooks, started before they are needed.

A kernel start (a Python process, ipykernel, then the runbook's own ``import pgrunbooks…``)
costs about as much as a short runbook itself. In a suite the next runbook is known in
advance, so :class:`KernelPool` starts its kernel — in the runbook's own folder, importing
the library modules the runbook imports — while the current runbooks execute and their
reports are written. The runbook then finds a ready kernel; nothing else changes: the warm-up
binds no name in the kernel's namespace and does not count as an execution.

The module is imported by the engine only; kernels never import it except through
:func:`guard` and :func:`warm`, which must stay cheap.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

_IMPORT = re.compile(r"^\s*(?:from\s+(pgrunbooks(?:\.\w+)*)\s+import\s+([\w\s,]+?)\s*$|import\s+(pgrunbooks(?:\.\w+)*))", re.M)


def warm(*modules: str) -> None:
    """Import ``modules`` (run inside a starting kernel); one that fails is left for the
    runbook's own cell to report."""
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - the notebook's import will raise it where it is seen
            pass


#: Seconds a kernel has, after SIGTERM, to let the interrupted cell roll back and record it.
TERM_GRACE_S = 0.5
_PR_SET_PDEATHSIG = 1


def guard(parent_pid: int) -> None:
    """Run inside a starting kernel: make it stop with the CLI that started it.

    * ``PR_SET_PDEATHSIG``: the kernel gets SIGTERM the moment its parent dies, even by
      kill -9 (ipykernel's own parent poller looks once a second, and an apply commits a
      batch in less);
    * SIGTERM raises ``KeyboardInterrupt`` in the running cell, so an action rolls back its
      open transaction and records ``interrupted``, and the kernel exits
      :data:`TERM_GRACE_S` later whatever the cell does.

    The death signal follows the thread that started the kernel; the engine starts kernels
    from threads that outlive them (the run's workers)."""
    def on_term(signum, frame):
        timer = threading.Timer(TERM_GRACE_S, os._exit, args=(128 + signum,))
        timer.daemon = True
        timer.start()
        raise KeyboardInterrupt(f"terminated by {signal.Signals(signum).name}")

    signal.signal(signal.SIGTERM, on_term)
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if parent_pid and os.getppid() != parent_pid:  # the parent died before the line above
        os._exit(128 + signal.SIGTERM)


def warm_modules(notebook: Path) -> list[str]:
    """The ``pgrunbooks`` modules a notebook's code cells import, in order of appearance.

    ``from pgrunbooks.notebook import charts`` names ``pgrunbooks.notebook.charts`` as well as
    ``pgrunbooks.notebook``: :func:`warm` skips what is not a module."""
    try:
        cells = json.loads(notebook.read_text(encoding="utf-8")).get("cells", [])
    except (OSError, ValueError):
        return []
    found: list[str] = []
    for cell in cells:
        if cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        for match in _IMPORT.finditer(source if isinstance(source, str) else "".join(source)):
            package, names, plain = match.groups()
            candidates = [plain] if plain else [package] + [f"{package}.{n.split()[0]}" for n in names.split(",") if n.strip()]
            found += [c for c in candidates if c not in found]
    return found


@dataclass
class StartedKernel:
    """A started kernel process, its stderr log, and what to clean up after it."""

    km: object  # jupyter_client AsyncKernelManager
    private: Path  # temporary folder holding the kernel's stderr log
    log: Path

    def log_text(self) -> str:
        try:
            return self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def alive(self) -> bool:
        from jupyter_core.utils import run_sync

        try:
            return bool(run_sync(self.km.is_alive)())
        except Exception:  # noqa: BLE001 - a manager that cannot tell is not worth using
            return False

    def interrupt(self) -> None:
        """SIGINT to the kernel's process group: ``KeyboardInterrupt`` in the running cell
        (an idle kernel ignores it). Safe to call from a signal handler."""
        self._signal(signal.SIGINT)

    def terminate(self) -> None:
        """SIGTERM: the kernel's :func:`guard` interrupts the cell again, then exits."""
        self._signal(signal.SIGTERM)

    def _signal(self, signum: int) -> None:
        provisioner = getattr(self.km, "provisioner", None)
        pgid = getattr(provisioner, "pgid", None)
        if not pgid:
            return  # not launched (yet): nothing runs there
        try:
            os.killpg(pgid, signum)
        except ProcessLookupError:  # already gone
            pass

    def stop(self) -> None:
        """Kill the kernel if it is still running (its log stays readable)."""
        from jupyter_core.utils import run_sync

        try:
            if self.km.has_kernel:
                run_sync(self.km.shutdown_kernel)(now=True)
        except Exception:  # noqa: BLE001 - already gone is what we want
            pass

    def discard(self) -> None:
        """Kill the kernel and remove its files."""
        self.stop()
        self.remove_files()

    def remove_files(self) -> None:
        shutil.rmtree(self.private, ignore_errors=True)


def start_kernel(cwd: Path, kernel_name: str, modules: Sequence[str] = ()) -> StartedKernel:
    """Launch a kernel in ``cwd`` that imports ``modules`` before it reports ready.

    Returns as soon as the process is launched: whoever connects waits for it to be ready."""
    from jupyter_client.manager import AsyncKernelManager
    from jupyter_core.utils import run_sync

    private = Path(tempfile.mkdtemp(prefix="pgrb-kernel-"))
    log = private / "kernel.log"
    from pgrunbooks.progress import HEADLESS

    km = AsyncKernelManager(kernel_name=kernel_name)
    engine = "__import__('pgrunbooks.engine.kernels', fromlist=['guard'])"
    lines = [f"{engine}.guard({os.getpid()})"]
    if modules:
        lines.append(f"{engine}.warm(*{list(modules)!r})")
    extra = [f"--IPKernelApp.exec_lines={json.dumps(lines)}"]
    with open(log, "wb") as stderr:  # the child keeps its own descriptor
        try:
            # HEADLESS: progress shows as one final line in a report, not as a widget (pgrunbooks.progress).
            run_sync(km.start_kernel)(cwd=str(cwd), stderr=stderr, extra_arguments=extra,
                                      env=dict(os.environ, **{HEADLESS: "1"}))
        except BaseException:
            shutil.rmtree(private, ignore_errors=True)
            raise
    return StartedKernel(km, private, log)


def start_kernel_for(notebook: Path, kernel_name: str) -> StartedKernel:
    """A kernel for ``notebook``: in its folder, its ``pgrunbooks`` imports done."""
    return start_kernel(notebook.parent, kernel_name, warm_modules(notebook))


class KernelPool:
    """Kernels for a known sequence of runbooks, each started ``ahead`` runbooks in advance.

    ``take(i)`` hands over the kernel of runbook ``i`` (waiting for it if another thread is
    starting it, starting it now if nobody did) and starts the next ones. The caller owns what
    it takes; :meth:`close` kills the kernels nobody took (an interrupted or failed suite
    leaves no kernel behind).
    """

    def __init__(self, notebooks: Sequence[Path], kernel_name: str, *, ahead: int = 1) -> None:
        self._notebooks = list(notebooks)
        self._kernel_name = kernel_name
        self._ahead = max(0, ahead)
        self._lock = threading.Lock()
        self._started: dict[int, Future] = {}  # index -> Future[StartedKernel], being started or ready
        self._next = 0  # the lowest index nobody started yet
        self._closed = False

    def _start(self, i: int) -> StartedKernel:
        return start_kernel_for(self._notebooks[i], self._kernel_name)

    def take(self, i: int) -> StartedKernel:
        """The kernel for runbook ``i``: pre-started and alive, or a fresh one."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the kernel pool is closed")
            pending = self._started.pop(i, None)
            self._next = max(self._next, i + 1)
        kernel = None
        if pending is not None and pending.exception() is None:  # a failed start is retried below
            kernel = pending.result()
        if kernel is not None and not kernel.alive():
            kernel.discard()
            kernel = None
        if kernel is None:
            kernel = self._start(i)
        self._start_ahead(i)
        return kernel

    def _start_ahead(self, i: int) -> None:
        while True:
            with self._lock:
                j = self._next
                if self._closed or j >= len(self._notebooks) or j > i + self._ahead:
                    return
                self._next = j + 1
                pending = self._started[j] = Future()
            try:
                pending.set_result(self._start(j))
            except Exception as exc:  # noqa: BLE001 - take(j) starts it again and reports
                pending.set_exception(exc)

    def close(self) -> None:
        """Kill every kernel started and not taken."""
        with self._lock:
            self._closed = True
            left, self._started = list(self._started.values()), {}
        for pending in left:
            try:
                pending.result().discard()  # one still starting is waited for, then killed
            except Exception:  # noqa: BLE001 - it never started
                pass

    def __enter__(self) -> "KernelPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
