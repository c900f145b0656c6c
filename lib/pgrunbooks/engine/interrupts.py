"""Ctrl-C and SIGTERM during a run: stop the running cells, write the reports, exit 130.

A kernel runs in a session of its own (jupyter_client starts it so), so a Ctrl-C at the
terminal reaches only the CLI. Left alone the CLI would stop waiting while its kernels went on
executing, an apply committing batch after batch. Instead, while :func:`~pgrunbooks.engine.run.run_all`
runs, :class:`Interrupts` catches SIGINT and SIGTERM and

* on the first one, interrupts every running kernel (SIGINT to its process group: ipykernel
  raises ``KeyboardInterrupt`` in the running cell, so an action's open transaction rolls back
  and its audit says ``interrupted``) and sets :attr:`Interrupts.event`, which stops every
  runbook before its next cell and every runbook not started yet;
* on a second one, terminates the kernels (SIGTERM: the kernel's :func:`~pgrunbooks.engine.kernels.guard`
  raises ``KeyboardInterrupt`` once more and exits shortly after).

The notebooks as far as they ran are then written like any failure, the interrupted cell
marked, and the run exits 130. A kill -9 of the CLI is handled on the kernel's side
(:func:`~pgrunbooks.engine.kernels.guard`).
"""

from __future__ import annotations

import signal
import sys
import threading
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupts:
    """The kernels of a run and what to do with them on SIGINT/SIGTERM (a context manager)."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signum: int | None = None
        self._kernels: dict[int, Any] = {}  # id -> kernel (kernels are not hashable)
        self._lock = threading.Lock()
        self._count = 0
        self._saved: dict[int, Any] = {}

    def add(self, kernel) -> None:
        """A kernel that starts executing a runbook; interrupted at once when the run already is."""
        with self._lock:
            self._kernels[id(kernel)] = kernel
        if self.event.is_set():
            kernel.interrupt()

    def discard(self, kernel) -> None:
        with self._lock:
            self._kernels.pop(id(kernel), None)

    def handle(self, signum: int, frame=None) -> None:
        """The signal handler (also callable directly, e.g. by a test)."""
        self._count += 1
        self.signum = self.signum or signum
        self.event.set()
        with self._lock:
            kernels = list(self._kernels.values())
        name = signal.Signals(signum).name
        if self._count == 1:
            print(f"{name}: interrupting the running cell(s); the reports are being written "
                  f"(again to terminate the kernels)", file=sys.stderr, flush=True)
            for kernel in kernels:
                kernel.interrupt()
        else:
            print(f"{name}: terminating the kernels", file=sys.stderr, flush=True)
            for kernel in kernels:
                kernel.terminate()

    def __enter__(self) -> "Interrupts":
        # Signal handlers can only be set from the main thread; run_all called from another
        # thread (a library caller) leaves signals to its caller.
        if threading.current_thread() is threading.main_thread():
            for signum in SIGNALS:
                self._saved[signum] = signal.signal(signum, self.handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, previous in self._saved.items():
            signal.signal(signum, previous)
        self._saved.clear()
