"""Running several runbooks: bounded parallelism, progress, the run's index, the exit code.

:func:`run_all` executes prepared runbooks ``jobs`` at a time, each on a kernel started while
the previous ones ran (:class:`~pgrunbooks.engine.kernels.KernelPool`), writes each one's
files as it finishes and the run's ``index.html`` at the end. Notebook failures are results,
not exceptions: one failing runbook never stops a suite. :func:`exit_code` maps the results
to 0/1/2.
"""

from __future__ import annotations

import concurrent.futures
import os
import sys
import threading
from pathlib import Path
from typing import Callable, Sequence

from pgrunbooks.engine import artifacts
from pgrunbooks.engine.execute import Executed, run_notebook
from pgrunbooks.engine.html import run_status_word
from pgrunbooks.engine.interrupts import Interrupts
from pgrunbooks.engine.kernels import KernelPool
from pgrunbooks.engine.prepare import Prepared
from pgrunbooks.engine.results import FAILED, INTERRUPTED, OK, ErrorInfo, Options, RunResult
from pgrunbooks.errors import UsageError, exit_code_of
from pgrunbooks.findings import Severity, at_or_above
from pgrunbooks.history.diff import NEW_FAILS_AT, RunDiff
from pgrunbooks.history.runs import RunHistory
from pgrunbooks.redact import redact

DEFAULT_FAIL_ON = "critical"
#: ``--fail-on new``: exit 1 only for findings new since the previous run, at warning or worse
FAIL_ON_NEW = "new"


def default_jobs() -> int:
    """Runbooks at a time when ``--jobs`` is not given: the cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def run_all(
    prepared: Sequence[Prepared],
    run_dir: Path,
    options: Options,
    *,
    jobs: int = 1,
    title: str = "pgrunbooks run",
    progress: bool = False,
    on_result: Callable[[RunResult], None] | None = None,
    history: RunHistory | None = None,
) -> list[RunResult]:
    """Execute ``prepared`` runbooks, at most ``jobs`` at a time; write their files, then
    ``index.html`` and ``summary.json``. Results come back in the order given, whatever
    finishes first.

    With ``history`` the findings are compared with the previous run of the same suite and
    target before the index is written (``history.diff``), and recorded in the history store
    after it; a history problem is one warning line on stderr, never a failed run."""
    jobs = max(1, min(int(jobs), len(prepared) or 1))
    results: list[RunResult | None] = [None] * len(prepared)
    # While the first kernels start this process only waits: import and compile the report
    # machinery meanwhile. A failure here is not ours to report; the real export will.
    threading.Thread(target=_warm_up_reports, name="pgrb-report-warm-up", daemon=True).start()
    bar, on_result = _progress(len(prepared), title, on_result) if progress else (None, on_result)
    # The next runbooks' kernels start while the current ones run (see pgrunbooks.engine.kernels).
    pool = KernelPool([p.runbook.path for p in prepared], options.kernel_name, ahead=1)
    interrupts = Interrupts()  # Ctrl-C / SIGTERM: interrupt the running cells, start nothing more

    def execute_one(i: int) -> Executed | RunResult:
        if interrupts.event.is_set():
            return _failed(prepared[i], KeyboardInterrupt("not started: the run was interrupted"))
        try:
            return run_notebook(prepared[i], options, lambda: pool.take(i), interrupts)
        except Exception as exc:  # never let one runbook stop the others
            return _failed(prepared[i], exc)

    def write_one(i: int, executed: Executed) -> RunResult:
        try:
            return artifacts.write(executed, run_dir, show_code=options.show_code)
        except Exception as exc:
            return _failed(prepared[i], exc)

    def finished(i: int, result: RunResult) -> None:
        if interrupts.event.is_set() and result.status != OK and result.error and result.error.ename != INTERRUPTED:
            # e.g. the kernel a second signal terminated: still the run's interruption (exit 130)
            e = result.error
            result.error = ErrorInfo(INTERRUPTED, f"the run was interrupted ({e.ename}: {e.evalue})", e.cell_index, e.exec_count)
        results[i] = result
        _tick(bar, result, on_result)

    # Kernels run ``jobs`` at a time; writing the reports (CPU: redaction, nbconvert) happens
    # on a separate thread, overlapping the next kernel's start instead of delaying it.
    try:
        with interrupts, \
                concurrent.futures.ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="pgrb-run") as runs, \
                concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="pgrb-write") as writes:
            pending = {runs.submit(execute_one, i): i for i in range(len(prepared))}
            writing: dict[concurrent.futures.Future, int] = {}
            while pending or writing:
                done, _ = concurrent.futures.wait(
                    list(pending) + list(writing), return_when=concurrent.futures.FIRST_COMPLETED
                )
                for future in done:
                    if future in pending:
                        i = pending.pop(future)
                        outcome = future.result()
                        if isinstance(outcome, Executed):
                            writing[writes.submit(write_one, i, outcome)] = i
                        else:
                            finished(i, outcome)
                    else:
                        finished(writing.pop(future), future.result())
    finally:
        pool.close()
        if bar is not None:
            bar.close()
    done = [r for r in results if r is not None]
    if history is None:
        artifacts.write_index(done, run_dir, title=title)
        return done
    try:
        _compare(history, done, run_dir)
        artifacts.write_index(done, run_dir, title=title, history=history)
        if not interrupts.event.is_set():  # an interrupted run's findings are partial: not a baseline
            history.record(done, run_dir)
    finally:
        history.close()
        for line in history.warnings:
            print(redact(line), file=sys.stderr, flush=True)
    return done


def _compare(history: RunHistory, results: Sequence[RunResult], run_dir: Path) -> None:
    """``history.compare``, its own failures said as a warning (the run's report comes first)."""
    try:
        history.compare(results, run_dir)
    except Exception as exc:  # noqa: BLE001 - history never fails a run
        history.diff = None
        history.warnings.append(redact(f"warning: no comparison with the previous run ({type(exc).__name__}: {exc})"))


def _warm_up_reports() -> None:
    try:
        from pgrunbooks.engine import html

        html.warm_up()
    except Exception:  # noqa: BLE001 - see run_all
        pass


def _failed(prepared: Prepared, exc: BaseException) -> RunResult:
    """The result of a runbook the engine itself could not run or write."""
    return RunResult(
        name=prepared.runbook.name, title=prepared.runbook.title, status=FAILED, findings=[],
        error=ErrorInfo(type(exc).__name__, redact(str(exc))), parameters=dict(prepared.parameters),
        target=prepared.target,
    )


def _progress(total: int, title: str, on_result: Callable[[RunResult], None] | None):
    """A bar on a terminal; on a log file (cron, CI) one plain line per finished runbook.
    Returns (the bar, the callback to call per result)."""
    from tqdm import tqdm

    bar = tqdm(total=total, file=sys.stderr, unit="runbook", desc=title, dynamic_ncols=True, disable=None)
    if not bar.disable:
        return bar, on_result
    done_count = [0]

    def print_line(result: RunResult) -> None:
        done_count[0] += 1
        line = f"[{done_count[0]}/{total}] {result.name}: {run_status_word(result.status)} ({result.seconds:.1f}s)"
        # One write, newline included: print() writes the end separately, and a log record from a
        # worker thread (papermill's, under -v) could land between the two, on the same line.
        sys.stderr.write(redact(line) + "\n")
        sys.stderr.flush()
        if on_result is not None:
            on_result(result)

    return bar, print_line


def _tick(bar, result: RunResult, on_result: Callable[[RunResult], None] | None) -> None:
    if bar is not None and not bar.disable:
        bar.set_postfix_str(f"{result.name}: {run_status_word(result.status)}", refresh=False)
        bar.update(1)
    if on_result is not None:
        on_result(result)


def exit_code(results: Sequence[RunResult], fail_on: str = DEFAULT_FAIL_ON, diff: RunDiff | None = None) -> int:
    """130 if the run was interrupted (SIGINT/SIGTERM); 2 if a runbook failed; 3 if every
    failure is bad input found inside a runbook (a cell raised a usage error: a name that
    matches nothing); else 1 if any finding is at or above ``fail_on``; else 0.

    ``fail_on`` ``new``: 1 only if ``diff`` (this run against the previous one) has a new
    finding at warning or worse; without a diff every finding counts as new."""
    failures = [r for r in results if r.status != OK]
    if any(r.error is not None and r.error.ename == INTERRUPTED for r in failures):
        return 130
    if failures:
        usage = all(r.error is not None and exit_code_of(r.error.ename) == 3 for r in failures)
        return 3 if usage else 2
    if str(fail_on).lower() == "none":
        return 0
    if str(fail_on).lower() == FAIL_ON_NEW:
        if diff is not None:
            return 1 if diff.alerting(NEW_FAILS_AT) else 0
        fail_on = NEW_FAILS_AT.value
    level = Severity.parse(fail_on)
    return 1 if any(at_or_above(r.findings, level) for r in results) else 0


def parse_fail_on(value: str, *, allow_new: bool = False) -> str:
    """``--fail-on``: a severity name (any case) or ``none`` (and ``new`` with ``allow_new``:
    runs and suites, which know their previous run); anything else is bad usage (exit 3)."""
    value = str(value).strip().lower()
    if value == "none" or (allow_new and value == FAIL_ON_NEW):
        return value
    try:
        return Severity.parse(value).value
    except UsageError as exc:
        choices = [s.value for s in Severity] + ([FAIL_ON_NEW] if allow_new else []) + ["none"]
        raise UsageError(f"unknown --fail-on value {value!r}", hint=f"use one of: {', '.join(choices)}") from exc
