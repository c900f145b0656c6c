"""Executing one runbook: papermill under time limits, on a kernel started for it.

:func:`run_notebook` never raises for a failing notebook: a cell that raised, a time limit, a
kernel that died or never started all come back as an :class:`Executed` whose ``error`` says
where and why, with the notebook as far as it ran and the failing cell marked the way
papermill marks it. Nothing is written here (see :mod:`pgrunbooks.engine.artifacts`): the
notebook may still hold secrets until it is redacted.
"""

from __future__ import annotations

import datetime as _dt
import re
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from pgrunbooks.engine.interrupts import Interrupts
from pgrunbooks.engine.kernels import StartedKernel, start_kernel_for
from pgrunbooks.engine.prepare import Prepared
from pgrunbooks.engine.results import INTERRUPTED, ErrorInfo, Options
from pgrunbooks.redact import redact

ENGINE_NAME = "pgrunbooks"
NOT_RUN = "not run: the run was interrupted (SIGINT/SIGTERM) before this cell"

_KERNEL_NOISE = re.compile(
    r"(Kernel is running over TCP without encryption|Use IPC transport or launch with kernel manager-provisioned"
    r"|Debugger warning: It seems that frozen modules|PYDEVD_DISABLE_FILE_VALIDATION|Note: Debugging will proceed"
    r"|make sure to pass the -Xfrozen_modules=off|to python to disable frozen modules"
    r"|KeyboardInterrupt caught in kernel)"
)


@dataclass
class Executed:
    """A finished execution: the notebook as far as it ran, and why it stopped if it failed."""

    prepared: Prepared
    nb: Any
    error: ErrorInfo | None
    seconds: float
    started_at: _dt.datetime
    kernel_text: str = ""  # the kernel's stderr, start-up chatter removed, redacted


def run_notebook(
    prepared: Prepared, options: Options, take_kernel: Callable[[], StartedKernel] | None = None,
    interrupts: Interrupts | None = None,
) -> Executed:
    """Execute one runbook with papermill; never raises for a notebook failure.

    ``take_kernel`` hands over a kernel started in advance (:meth:`~pgrunbooks.engine.kernels.KernelPool.take`);
    without it one is started now. A kernel that cannot start fails the runbook like any
    other error; the kernel is shut down when the runbook is done. With ``interrupts`` the
    kernel is interrupted on SIGINT/SIGTERM and no further cell runs
    (:mod:`pgrunbooks.engine.interrupts`)."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    _register_engine()
    runbook = prepared.runbook
    started = time.monotonic()
    started_at = _dt.datetime.now(_dt.timezone.utc)
    deadline = started + float(options.timeout)
    holder: dict[str, Any] = {"stop": interrupts.event if interrupts else None}
    error: ErrorInfo | None = None
    nb = None

    def timeout_func(cell) -> int:
        remaining = deadline - time.monotonic()
        return max(1, int(min(float(options.cell_timeout), remaining) + 0.999))

    timeout_msg = (
        f"the cell did not finish within its time limit (per cell {options.cell_timeout:g}s, "
        f"per runbook {options.timeout:g}s) and was interrupted"
    )
    kernel: StartedKernel | None = None
    try:
        kernel = take_kernel() if take_kernel else start_kernel_for(runbook.path, options.kernel_name)
        if interrupts is not None:
            interrupts.add(kernel)
        nb = papermill.execute_notebook(
            str(runbook.path),
            None,  # nothing on disk until it is redacted
            parameters=prepared.parameters,
            engine_name=ENGINE_NAME,
            kernel_name=options.kernel_name,
            km=kernel.km,
            progress_bar=False,
            log_output=False,
            request_save_on_cell_execute=False,
            start_timeout=int(options.start_timeout),
            execution_timeout=int(options.cell_timeout),
            timeout_func=timeout_func,
            interrupt_on_timeout=True,
            error_on_timeout={"ename": "TimeoutError", "evalue": timeout_msg, "traceback": [f"TimeoutError: {timeout_msg}"]},
            # Every output is in once the last cell is idle; a graceful shutdown only
            # adds the kernel's interpreter teardown (~0.1-0.2 s per runbook). Sessions
            # are idle by then, so the server just sees the client go.
            shutdown_kernel="immediate",
            resources={"metadata": {"path": str(runbook.path.parent)}},
            pgrb_holder=holder,
        )
    except PapermillExecutionError as exc:
        nb = holder["nb_man"].nb
        error = ErrorInfo(exc.ename, exc.evalue, exc.cell_index, exc.exec_count)
    except Exception as exc:  # timeout at kernel start, dead kernel, bad notebook...
        nb, error = _salvage(holder, prepared, exc)
    finally:
        kernel_text = ""
        if kernel is not None:
            if interrupts is not None:
                interrupts.discard(kernel)
            kernel.stop()  # already stopped unless papermill failed before it started
            kernel_text = _clean_text(kernel.log_text())
            kernel.remove_files()

    if error is not None and holder.get("timed_out"):
        error = ErrorInfo("TimeoutError", timeout_msg, error.cell_index, error.exec_count)
        _add_timeout_output(nb, timeout_msg)
    return Executed(prepared, nb, error, time.monotonic() - started, started_at, kernel_text)


_engine_lock = threading.Lock()
_engine_registered = False


def _register_engine() -> None:
    """A papermill engine that hands us its execution manager, so a timeout or a dead kernel
    still leaves us the partially executed notebook to mark and write."""
    global _engine_registered
    with _engine_lock:
        if _engine_registered:
            return
        from papermill.clientwrap import PapermillNotebookClient
        from papermill.engines import NBClientEngine, papermill_engines
        from papermill.log import logger
        from papermill.utils import remove_args

        class Client(PapermillNotebookClient):
            holder: dict = {}

            async def _async_handle_timeout(self, timeout, cell=None):
                self.holder["timed_out"] = True
                return await super()._async_handle_timeout(timeout, cell)

            async def async_execute_cell(self, cell, cell_index, execution_count=None, store_history=True):
                # A run interrupted between two cells (an idle kernel ignores SIGINT) runs no further cell.
                stop = self.holder.get("stop")
                if stop is not None and stop.is_set() and cell.cell_type == "code":
                    from nbclient.exceptions import CellExecutionError
                    import nbformat

                    cell.outputs = [nbformat.v4.new_output(
                        "error", ename=INTERRUPTED, evalue=NOT_RUN, traceback=[f"{INTERRUPTED}: {NOT_RUN}"]
                    )]
                    raise CellExecutionError(f"{INTERRUPTED}: {NOT_RUN}", INTERRUPTED, NOT_RUN)
                return await super().async_execute_cell(cell, cell_index, execution_count, store_history)

        class PgRunbooksEngine(NBClientEngine):
            @classmethod
            def execute_managed_notebook(
                cls, nb_man, kernel_name, log_output=False, stdout_file=None, stderr_file=None,
                start_timeout=60, execution_timeout=None, **kwargs,
            ):
                holder = kwargs.pop("pgrb_holder", {})
                holder["nb_man"] = nb_man
                kwargs = remove_args(["input_path", "timeout", "startup_timeout"], **kwargs)
                client = Client(
                    nb_man, timeout=execution_timeout, startup_timeout=start_timeout, kernel_name=kernel_name,
                    log=logger, log_output=log_output, stdout_file=stdout_file, stderr_file=stderr_file, **kwargs,
                )
                client.holder = holder
                # The kernel was started for us (see pgrunbooks.engine.kernels); stopping it is ours too.
                return client.execute(cleanup_kc=True)

        papermill_engines.register(ENGINE_NAME, PgRunbooksEngine)
        _engine_registered = True


def _salvage(holder: dict, prepared: Prepared, exc: BaseException):
    """The notebook as far as it ran, with the interrupted cell marked like papermill does."""
    import nbformat
    from papermill.exceptions import PapermillExecutionError
    from papermill.execute import raise_for_execution_errors

    ename = type(exc).__name__
    evalue = redact(str(exc).strip() or ename)
    if "nb_man" in holder:
        nb = holder["nb_man"].nb
    else:
        nb = nbformat.read(str(prepared.runbook.path), as_version=4)
    index = _interrupted_cell(nb)
    if index is None:
        return nb, ErrorInfo(ename, evalue)
    cell = nb.cells[index]
    cell.setdefault("metadata", {}).setdefault("papermill", {})["exception"] = True
    cell.metadata["papermill"]["status"] = "failed"
    cell.setdefault("outputs", []).append(
        nbformat.v4.new_output("error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])
    )
    info = ErrorInfo(ename, evalue, index, cell.get("execution_count"))
    try:
        raise_for_execution_errors(nb, None)  # inserts papermill's error marker cells
    except PapermillExecutionError as marked:
        info = ErrorInfo(ename, evalue, marked.cell_index, marked.exec_count)
    return nb, info


def _interrupted_cell(nb) -> int | None:
    """The code cell that was executing: the running one, else the last one started (papermill
    marks a cell whose kernel died "completed"), else the first that did not complete, else
    the first one (the kernel never started)."""
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]

    def meta(i: int) -> dict:
        return nb.cells[i].get("metadata", {}).get("papermill", {})

    started = [i for i in code if meta(i).get("start_time")]
    for candidates in (
        [i for i in code if meta(i).get("status") == "running"],
        started[-1:],
        [i for i in code if meta(i).get("status") != "completed"],
        code,
    ):
        if candidates:
            return candidates[0]
    return None


def _add_timeout_output(nb, message: str) -> None:
    """Say, in the marked cell, that it was stopped by the time limit (not by a bug in it)."""
    import nbformat

    for cell in nb.cells:
        if cell.get("metadata", {}).get("papermill", {}).get("exception"):
            outputs = cell.setdefault("outputs", [])
            if not any(o.get("output_type") == "error" and o.get("ename") == "TimeoutError" for o in outputs):
                outputs.append(nbformat.v4.new_output("error", ename="TimeoutError", evalue=message, traceback=[f"TimeoutError: {message}"]))
            return


def _clean_text(text: str) -> str:
    """The kernel's stderr without ipykernel's start-up chatter, redacted."""
    lines = [line for line in text.splitlines() if line.strip() and not _KERNEL_NOISE.search(line)]
    return redact("\n".join(lines))
