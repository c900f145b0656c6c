"""Run runbooks headlessly: find them, validate their parameters, execute them with
papermill under time limits, collect their findings, write the reports, pick the exit code.

The flow of ``pgrunbooks run`` / ``suite``:

1. :func:`find_runbook` resolves ``group/name`` (or a unique bare ``name``) under the
   runbooks directory (:func:`runbooks_dir`).
2. :func:`prepare` merges and validates the parameters against the notebook's
   ``parameters`` cell and resolves (never connects to) the target. Any problem is a
   :class:`~pgrunbooks.errors.UsageError` (exit 3) raised before a kernel starts.
3. :func:`execute` runs the notebook with papermill (kernel ``python3``, cwd the notebook's
   folder, a per-cell and a per-runbook time limit) and **always** writes
   ``<stem>.ipynb``, ``<stem>.html`` and ``<stem>.findings.json`` — a failing cell is marked
   in both — with every secret redacted. It never raises for a failing notebook.
4. :func:`run_all` runs several prepared runbooks with bounded parallelism, writes the run's
   ``index.html`` and ``summary.json``; :func:`exit_code` maps the results to 0/1/2.

Notebook failures are results, not exceptions: one failing runbook never stops a suite.
"""

from __future__ import annotations

import concurrent.futures
import datetime as _dt
import difflib
import json
import os
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from pgrunbooks import params as _params
from pgrunbooks.errors import ParameterError, PgRunbooksError, UsageError
from pgrunbooks.findings import Finding, Severity, at_or_above, severity_counts, suppress as _suppress, worst
from pgrunbooks.kernels import KernelPool, StartedKernel, start_kernel_for
from pgrunbooks.redact import redact
from pgrunbooks.report import FINDINGS_MIME, IndexEntry, counts_text, redact_tree, report_stem

DEFAULT_TIMEOUT_S = 1800  # a whole runbook
DEFAULT_CELL_TIMEOUT_S = 600  # one cell
DEFAULT_FAIL_ON = "critical"
KERNEL_NAME = "python3"
ENGINE_NAME = "pgrunbooks"
SUITES = ("daily", "weekly", "monthly")

OK = "ok"
FAILED = "failed"


# --------------------------------------------------------------------------------------
# Where things are
# --------------------------------------------------------------------------------------
def project_root(start: Path | None = None) -> Path | None:
    """The pgrunbooks project holding ``runbooks/``: the nearest ancestor of ``start`` (the
    working directory) with a ``runbooks`` folder and this project's ``pyproject.toml``,
    else the checkout this package is installed from (editable install)."""
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        if (directory / "runbooks").is_dir() and _is_project(directory):
            return directory
    package_checkout = Path(__file__).resolve().parents[2]
    if (package_checkout / "runbooks").is_dir() and _is_project(package_checkout):
        return package_checkout
    for directory in (here, *here.parents):  # any folder with runbooks/ (a user's ops repo)
        if (directory / "runbooks").is_dir():
            return directory
    return None


def _is_project(directory: Path) -> bool:
    pyproject = directory / "pyproject.toml"
    return pyproject.is_file() and 'name = "pgrunbooks"' in pyproject.read_text(errors="ignore")


def runbooks_dir() -> Path:
    """``$PGRUNBOOKS_RUNBOOKS``, else ``<project>/runbooks``."""
    env = os.environ.get("PGRUNBOOKS_RUNBOOKS")
    if env:
        path = Path(env).expanduser().resolve()
        if not path.is_dir():
            raise UsageError(f"PGRUNBOOKS_RUNBOOKS={env} is not a directory")
        return path
    root = project_root()
    if root is None:
        raise UsageError(
            "cannot find the runbooks directory",
            hint="run from the pgrunbooks checkout or set PGRUNBOOKS_RUNBOOKS=/path/to/runbooks",
        )
    return root / "runbooks"


def params_dir() -> Path:
    """``$PGRUNBOOKS_PARAMS``, else ``<project>/params`` (next to ``runbooks/``)."""
    env = os.environ.get("PGRUNBOOKS_PARAMS")
    if env:
        return Path(env).expanduser().resolve()
    root = project_root()
    if root is None:
        raise UsageError("cannot find the params directory", hint="set PGRUNBOOKS_PARAMS=/path/to/params")
    return root / "params"


# --------------------------------------------------------------------------------------
# Runbooks
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Runbook:
    """A notebook under the runbooks directory, named ``group/name``."""

    name: str
    path: Path
    group: str
    title: str = ""
    purpose: str = ""
    mutates: bool = False
    metadata: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def stem(self) -> str:
        return report_stem(self.name)

    @property
    def short_name(self) -> str:
        return self.name.rsplit("/", 1)[-1]


def load_runbook(path: Path, root: Path) -> Runbook:
    """Read a notebook's ``metadata.pgrunbooks`` (group, title, purpose, mutates)."""
    rel = path.relative_to(root).with_suffix("")
    name = rel.as_posix()
    try:
        nb = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read runbook {path}: {exc}") from None
    meta = dict((nb.get("metadata") or {}).get("pgrunbooks") or {})
    title = str(meta.get("title") or _first_heading(nb) or rel.name)
    return Runbook(
        name=name,
        path=path,
        group=str(meta.get("group") or (rel.parent.as_posix() if rel.parent.as_posix() != "." else "")),
        title=title,
        purpose=str(meta.get("purpose") or ""),
        mutates=bool(meta.get("mutates", False)),
        metadata=meta,
    )


def _first_heading(nb: dict) -> str | None:
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "markdown":
            source = "".join(cell.get("source", []))
            for line in source.splitlines():
                if line.startswith("#"):
                    return line.lstrip("#").strip()
    return None


def discover(root: Path | None = None) -> list[Runbook]:
    """Every runbook under ``root`` (default :func:`runbooks_dir`), sorted by name."""
    root = root or runbooks_dir()
    found = []
    for path in sorted(root.rglob("*.ipynb")):
        parts = path.relative_to(root).parts
        if any(p.startswith(".") or p.startswith("_") for p in parts):
            continue  # .ipynb_checkpoints, _drafts
        found.append(load_runbook(path, root))
    return found


def find_runbook(name: str, root: Path | None = None) -> Runbook:
    """``group/name`` or a unique bare ``name`` -> :class:`Runbook`; unknown -> exit 3 with close matches."""
    root = root or runbooks_dir()
    clean = name.strip().removesuffix(".ipynb").strip("/")
    if not clean or ".." in Path(clean).parts:
        raise UsageError(f"invalid runbook name {name!r}")
    direct = root / f"{clean}.ipynb"
    if "/" in clean and direct.is_file():
        return load_runbook(direct, root)
    everything = discover(root)
    matches = [r for r in everything if r.name == clean or ("/" not in clean and r.short_name == clean)]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise UsageError(
            f"runbook name {name!r} is ambiguous: {', '.join(r.name for r in matches)}",
            hint="use the full group/name",
        )
    names = [r.name for r in everything]
    close = difflib.get_close_matches(clean, names, n=5, cutoff=0.75)
    close += [n for n in difflib.get_close_matches(clean, [r.short_name for r in everything], n=5, cutoff=0.6)]
    close = list(dict.fromkeys(r.name for c in close for r in everything if c in (r.name, r.short_name)))
    hint = f"did you mean: {', '.join(close[:5])}?" if close else "see `pgrunbooks list`"
    raise UsageError(f"unknown runbook {name!r} (in {root})", hint=hint)


# --------------------------------------------------------------------------------------
# Suites
# --------------------------------------------------------------------------------------
@dataclass
class SuiteEntry:
    runbook: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class Suite:
    """A suite definition: ``params/<name>.yaml`` with ``runbooks:`` and shared ``params:``."""

    name: str
    path: Path
    description: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    entries: list[SuiteEntry] = field(default_factory=list)


def load_suite(name_or_path: str) -> Suite:
    """``daily`` -> ``params/daily.yaml``; a path to a YAML file works too."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") or candidate.is_file():
        path = candidate
    else:
        if not re.match(r"^[A-Za-z0-9_.-]+$", name_or_path):
            raise UsageError(f"invalid suite name {name_or_path!r}")
        path = params_dir() / f"{name_or_path}.yaml"
    if not path.is_file():
        available = sorted(p.stem for p in path.parent.glob("*.yaml") if _looks_like_suite(p)) if path.parent.is_dir() else []
        raise UsageError(
            f"unknown suite {name_or_path!r} (no {path})",
            hint=f"available suites: {', '.join(available)}" if available else "suites are YAML files under params/",
        )
    data = _params.load_yaml(path)
    if not isinstance(data, dict) or not isinstance(data.get("runbooks"), list):
        raise ParameterError(f"suite {path} must be a mapping with a 'runbooks:' list")
    shared = data.get("params") or {}
    if not isinstance(shared, dict):
        raise ParameterError(f"suite {path}: 'params' must be a mapping")
    entries = []
    for i, item in enumerate(data["runbooks"]):
        if isinstance(item, str):
            entries.append(SuiteEntry(item))
        elif isinstance(item, dict) and isinstance(item.get("name"), str):
            extra = set(item) - {"name", "params"}
            if extra:
                raise ParameterError(f"suite {path}: runbook #{i + 1} has unknown keys {sorted(extra)}")
            p = item.get("params") or {}
            if not isinstance(p, dict):
                raise ParameterError(f"suite {path}: params of {item['name']} must be a mapping")
            entries.append(SuiteEntry(item["name"], {str(k): _params._plain(v) for k, v in p.items()}))
        else:
            raise ParameterError(f"suite {path}: runbook #{i + 1} must be a name or a mapping with 'name'")
    return Suite(
        name=path.stem,
        path=path,
        description=str(data.get("description") or ""),
        params={str(k): _params._plain(v) for k, v in shared.items()},
        entries=entries,
    )


def _looks_like_suite(path: Path) -> bool:
    try:
        return "\nrunbooks:" in "\n" + path.read_text()
    except OSError:
        return False


# --------------------------------------------------------------------------------------
# Preparing a run (everything that can be checked without a kernel or a connection)
# --------------------------------------------------------------------------------------
@dataclass
class Prepared:
    """A runbook with validated parameters and a resolved (not connected) target."""

    runbook: Runbook
    parameters: dict[str, Any]
    target: str | None = None  # redacted, for display
    suppress: list[str] = field(default_factory=list)
    stem: str = ""


def prepare(
    runbook: Runbook,
    values: dict[str, Any],
    *,
    raw: dict[str, str] | None = None,
    target: str | None = None,
    ignore_unknown: Iterable[str] = (),
) -> Prepared:
    """Validate ``values`` for ``runbook`` and resolve its target; raise before anything runs."""
    from pgrunbooks.targets import resolve

    spec = _params.notebook_parameters(runbook.path)
    values = dict(values)
    raw = dict(raw or {})
    if target is not None:
        values[_params.TARGET] = target
        raw.pop(_params.TARGET, None)
    has_cell = _params.has_parameters_cell(json.loads(runbook.path.read_text()))
    injected = _params.validate(
        values, spec, runbook=runbook.name, raw=raw, has_cell=has_cell, ignore_unknown=ignore_unknown
    )
    shown_target = None
    if _params.TARGET in spec:
        effective = injected.get(_params.TARGET, spec[_params.TARGET].default)
        if isinstance(effective, str):
            shown_target = str(resolve(effective))  # TargetError (exit 3) without connecting
    suppress_keys = list(injected.get(_params.SUPPRESS) or [])
    if _params.SUPPRESS in injected and not injected[_params.SUPPRESS] and _params.SUPPRESS not in spec:
        injected.pop(_params.SUPPRESS)
    return Prepared(runbook, injected, shown_target, suppress_keys, runbook.stem)


def prepare_suite(suite: Suite, *, extra: dict[str, Any] | None = None, raw: dict[str, str] | None = None,
                  target: str | None = None) -> list[Prepared]:
    """Prepare every runbook of ``suite``; shared values go to the runbooks that declare them.

    A shared value (suite ``params:``, ``-f``/``-p``) that no runbook of the suite declares is
    an error; per-runbook values are strict.
    """
    extra = dict(extra or {})
    raw = dict(raw or {})
    shared = {**suite.params, **extra}
    prepared: list[Prepared] = []
    problems: list[str] = []
    declared: set[str] = set()
    root = runbooks_dir()
    for entry in suite.entries:
        try:
            runbook = find_runbook(entry.runbook, root)
            spec = _params.notebook_parameters(runbook.path)
            declared.update(spec)
            mine = {k: v for k, v in shared.items() if k in spec or k in _params.UNIVERSAL}
            mine.update(entry.params)
            mine_raw = {k: v for k, v in raw.items() if k not in entry.params}
            prepared.append(prepare(runbook, mine, raw=mine_raw, target=target))
        except UsageError as exc:
            problems.append(str(exc))
    unused = [k for k in shared if k not in declared and k not in _params.UNIVERSAL]
    if unused:
        problems.append(f"parameter(s) {', '.join(sorted(unused))} are declared by no runbook of suite {suite.name}")
    if problems:
        raise ParameterError(f"suite {suite.name} ({suite.path}) cannot run:\n" + "\n".join(problems))
    _unique_stems(prepared)
    return prepared


def _unique_stems(prepared: Sequence[Prepared]) -> None:
    seen: dict[str, int] = {}
    for p in prepared:
        n = seen.get(p.runbook.stem, 0) + 1
        seen[p.runbook.stem] = n
        p.stem = p.runbook.stem if n == 1 else f"{p.runbook.stem}-{n}"


# --------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------
@dataclass
class ErrorInfo:
    """Where and why a runbook failed."""

    ename: str
    evalue: str
    cell_index: int | None = None
    exec_count: int | None = None

    def one_line(self) -> str:
        first = (self.evalue or "").strip().splitlines()[0] if (self.evalue or "").strip() else ""
        where = f" (cell In [{self.exec_count}])" if self.exec_count else ""
        return redact(f"{self.ename}: {first}{where}" if first else f"{self.ename}{where}")

    def hint(self) -> str | None:
        for line in (self.evalue or "").splitlines():
            if line.strip().startswith("hint:"):
                return redact(line.strip())
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ename": self.ename,
            "evalue": redact(self.evalue or ""),
            "cell_index": self.cell_index,
            "exec_count": self.exec_count,
        }


@dataclass
class Options:
    """How to execute: output, time limits, report flavour."""

    show_code: bool = False
    timeout: float = DEFAULT_TIMEOUT_S
    cell_timeout: float = DEFAULT_CELL_TIMEOUT_S
    start_timeout: float = 60
    kernel_name: str = KERNEL_NAME


@dataclass
class RunResult:
    name: str
    title: str
    status: str
    findings: list[Finding]
    suppressed: int = 0
    error: ErrorInfo | None = None
    seconds: float = 0.0
    ipynb: Path | None = None
    html: Path | None = None
    findings_json: Path | None = None
    log: Path | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    target: str | None = None

    @property
    def counts(self) -> dict[str, int]:
        return severity_counts(self.findings)

    @property
    def worst(self) -> Severity:
        return worst(self.findings)

    def to_dict(self, relative_to: Path | None = None) -> dict[str, Any]:
        def rel(p: Path | None) -> str | None:
            if p is None:
                return None
            return os.path.relpath(p, relative_to) if relative_to else str(p)

        return redact_tree(
            {
                "runbook": self.name,
                "title": self.title,
                "status": self.status,
                "worst": self.worst.value,
                "counts": self.counts,
                "suppressed": self.suppressed,
                "seconds": round(self.seconds, 3),
                "target": self.target,
                "parameters": self.parameters,
                "error": self.error.to_dict() if self.error else None,
                "files": {"ipynb": rel(self.ipynb), "html": rel(self.html), "findings": rel(self.findings_json), "log": rel(self.log)},
            }
        )


# --------------------------------------------------------------------------------------
# Execution
# --------------------------------------------------------------------------------------
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
                # The kernel was started for us (see pgrunbooks.kernels); stopping it is ours too.
                return client.execute(cleanup_kc=True)

        papermill_engines.register(ENGINE_NAME, PgRunbooksEngine)
        _engine_registered = True


_KERNEL_NOISE = re.compile(
    r"(Kernel is running over TCP without encryption|Use IPC transport or launch with kernel manager-provisioned"
    r"|Debugger warning: It seems that frozen modules|PYDEVD_DISABLE_FILE_VALIDATION|Note: Debugging will proceed"
    r"|make sure to pass the -Xfrozen_modules=off|to python to disable frozen modules"
    r"|KeyboardInterrupt caught in kernel)"
)


def utc_stamp(now: _dt.datetime | None = None) -> str:
    return (now or _dt.datetime.now(_dt.timezone.utc)).strftime("%Y%m%dT%H%M%SZ")


def new_run_dir(out: Path | str) -> Path:
    """``<out>/<UTC timestamp>`` (``-2``, ``-3``… when that second is taken)."""
    out = Path(out).expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    stamp = utc_stamp()
    for n in range(1, 1000):
        candidate = out / (stamp if n == 1 else f"{stamp}-{n}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
    raise UsageError(f"cannot create a run directory under {out}")


def execute(prepared: Prepared, run_dir: Path, options: Options | None = None) -> RunResult:
    """Execute one runbook and write its artifacts; failures become a ``failed`` result."""
    options = options or Options()
    return write(run_notebook(prepared, options), run_dir, options)


@dataclass
class Executed:
    """A finished execution whose artifacts are not written yet (see :func:`write`)."""

    result: RunResult
    nb: Any
    stem: str
    started_at: _dt.datetime
    kernel_text: str = ""


def run_notebook(
    prepared: Prepared, options: Options | None = None, take_kernel: Callable[[], StartedKernel] | None = None
) -> Executed:
    """Execute one runbook with papermill; never raises for a notebook failure.

    ``take_kernel`` hands over a kernel started in advance (:meth:`~pgrunbooks.kernels.KernelPool.take`);
    without it one is started now. A kernel that cannot start fails the runbook like any
    other error; the kernel is shut down when the runbook is done."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    options = options or Options()
    _register_engine()
    runbook = prepared.runbook
    stem = prepared.stem or runbook.stem
    started = time.monotonic()
    started_at = _dt.datetime.now(_dt.timezone.utc)
    deadline = started + float(options.timeout)
    holder: dict[str, Any] = {}
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
        nb, error = _salvage(holder, runbook, exc)
    finally:
        kernel_text = ""
        if kernel is not None:
            kernel.stop()  # already stopped unless papermill failed before it started
            kernel_text = _clean_text(kernel.log_text())
            kernel.remove_files()

    if error is not None and holder.get("timed_out"):
        error = ErrorInfo("TimeoutError", timeout_msg, error.cell_index, error.exec_count)
        _add_timeout_output(nb, timeout_msg)
    seconds = time.monotonic() - started
    raw_findings = collect_findings(nb)
    findings = _suppress(raw_findings, prepared.suppress) if prepared.suppress else raw_findings
    status = FAILED if error else OK
    result = RunResult(
        name=runbook.name,
        title=runbook.title,
        status=status,
        findings=findings,
        suppressed=len(raw_findings) - len(findings),
        error=error,
        seconds=seconds,
        parameters=dict(prepared.parameters),
        target=prepared.target,
    )
    return Executed(result, nb, stem, started_at, kernel_text)


def write(executed: Executed, run_dir: Path, options: Options | None = None) -> RunResult:
    """Write the redacted notebook, the HTML report and the findings JSON of ``executed``."""
    _write_artifacts(executed.result, executed.nb, run_dir, executed.stem, options or Options(), executed.started_at, executed.kernel_text)
    return executed.result


def _salvage(holder: dict, runbook: Runbook, exc: BaseException):
    """The notebook as far as it ran, with the interrupted cell marked like papermill does."""
    import nbformat
    from papermill.exceptions import PapermillExecutionError
    from papermill.execute import raise_for_execution_errors

    ename = type(exc).__name__
    evalue = redact(str(exc).strip() or ename)
    if "nb_man" in holder:
        nb = holder["nb_man"].nb
    else:
        nb = nbformat.read(str(runbook.path), as_version=4)
    # the running cell, else the first code cell that did not complete
    index = None
    for i, cell in enumerate(nb.cells):
        status = cell.get("metadata", {}).get("papermill", {}).get("status")
        if cell.cell_type == "code" and status == "running":
            index = i
            break
    if index is None:
        index = next(
            (i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.get("metadata", {}).get("papermill", {}).get("status") != "completed"),
            None,
        )
    if index is None:
        index = next((i for i, c in enumerate(nb.cells) if c.cell_type == "code"), None)
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


def collect_findings(nb) -> list[Finding]:
    """Every finding recorded in the executed notebook (all ``record()`` calls, in order,
    identical duplicates dropped)."""
    found: list[Finding] = []
    seen: set[str] = set()
    for cell in nb.cells if nb is not None else ():
        for output in cell.get("outputs", []) or []:
            data = output.get("data") or {}
            payload = data.get(FINDINGS_MIME)
            if payload is None:
                continue
            if isinstance(payload, str):
                try:
                    payload = json.loads(payload)
                except ValueError:
                    continue
            for item in payload if isinstance(payload, list) else [payload]:
                if not isinstance(item, dict):
                    continue
                key = json.dumps(item, sort_keys=True, default=str)
                if key in seen:
                    continue
                seen.add(key)
                try:
                    found.append(Finding.from_dict(item))
                except (TypeError, PgRunbooksError):
                    continue
    return found


def _write_artifacts(result: RunResult, nb, run_dir: Path, stem: str, options: Options, started_at, kernel_text: str) -> None:
    import nbformat

    from pgrunbooks import report

    run_dir.mkdir(parents=True, exist_ok=True)
    clean = nbformat.from_dict(redact_tree(nb))
    ipynb = run_dir / f"{stem}.ipynb"
    nbformat.write(clean, str(ipynb))
    result.ipynb = ipynb

    html_path = run_dir / f"{stem}.html"
    meta = {
        "runbook": result.name,
        "status": result.status + (f" — {result.error.one_line()}" if result.error else ""),
        "target": result.target,
        "started": started_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
        "duration": f"{result.seconds:.1f}s",
        "suppressed": result.suppressed or None,
    }
    try:
        body = report.export_html(
            clean,
            findings=result.findings,
            title=f"{result.name} — {result.title}" if result.title and result.title != result.name else result.name,
            status=result.status,
            error=result.error.one_line() if result.error else None,
            show_code=options.show_code,
            meta=meta,
            parameters=result.parameters,
        )
    except Exception as exc:  # the report must exist even if conversion breaks
        body = report.fallback_html(result.name, result.findings, result.status, result.error.one_line() if result.error else None, f"HTML conversion failed: {type(exc).__name__}: {exc}")
    html_path.write_text(body, encoding="utf-8")  # export_html/fallback_html redact
    result.html = html_path

    if kernel_text:
        log = run_dir / f"{stem}.log"
        log.write_text(kernel_text + "\n", encoding="utf-8")
        result.log = log

    findings_path = run_dir / f"{stem}.findings.json"
    result.findings_json = findings_path
    document = result.to_dict(relative_to=run_dir)
    document["started_at"] = started_at.isoformat()
    document["findings"] = [f.to_dict() for f in result.findings]
    findings_path.write_text(json.dumps(redact_tree(document), indent=2, default=str) + "\n", encoding="utf-8")


# --------------------------------------------------------------------------------------
# Several runbooks
# --------------------------------------------------------------------------------------
def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _warm_up_reports() -> None:
    try:
        from pgrunbooks import report

        report.warm_up()
    except Exception:  # noqa: BLE001 - see run_all
        pass


def run_all(
    prepared: Sequence[Prepared],
    run_dir: Path,
    options: Options | None = None,
    *,
    jobs: int = 1,
    title: str = "pgrunbooks run",
    progress: bool = False,
    on_result: Callable[[RunResult], None] | None = None,
) -> list[RunResult]:
    """Execute ``prepared`` runbooks, at most ``jobs`` at a time; write ``index.html`` and
    ``summary.json``. Results come back in the order given, whatever finishes first."""
    options = options or Options()
    jobs = max(1, min(int(jobs), len(prepared) or 1))
    results: list[RunResult | None] = [None] * len(prepared)
    # While the first kernels start this process only waits: import and compile the report
    # machinery meanwhile. A failure here is not ours to report; the real export will.
    threading.Thread(target=_warm_up_reports, name="pgrb-report-warm-up", daemon=True).start()
    bar = None
    if progress:
        from tqdm import tqdm

        # A bar on a terminal; on a log file (cron, CI) one plain line per finished runbook.
        bar = tqdm(total=len(prepared), file=sys.stderr, unit="runbook", desc=title, dynamic_ncols=True, disable=None)
        if bar.disable:
            total = len(prepared)
            done_count = [0]
            inner = on_result

            def on_result(result: RunResult) -> None:  # noqa: F811 - wraps the caller's callback
                done_count[0] += 1
                line = f"[{done_count[0]}/{total}] {result.name}: {result.status} ({result.seconds:.1f}s)"
                print(redact(line), file=sys.stderr, flush=True)
                if inner is not None:
                    inner(result)

    def failed(p: Prepared, exc: BaseException) -> RunResult:
        return RunResult(
            name=p.runbook.name, title=p.runbook.title, status=FAILED, findings=[],
            error=ErrorInfo(type(exc).__name__, redact(str(exc))), parameters=dict(p.parameters), target=p.target,
        )

    # The next runbooks' kernels start while the current ones run (see pgrunbooks.kernels).
    pool = KernelPool([p.runbook.path for p in prepared], options.kernel_name, ahead=1)

    def execute_one(i: int) -> Executed | RunResult:
        try:
            return run_notebook(prepared[i], options, lambda: pool.take(i))
        except Exception as exc:  # never let one runbook stop the others
            return failed(prepared[i], exc)

    def write_one(i: int, executed: Executed) -> RunResult:
        try:
            return write(executed, run_dir, options)
        except Exception as exc:
            return failed(prepared[i], exc)

    # Kernels run ``jobs`` at a time; writing the reports (CPU: redaction, nbconvert) happens
    # on a separate thread, overlapping the next kernel's start instead of delaying it.
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="pgrb-run") as runs, \
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
                            results[i] = outcome
                            _tick(bar, outcome, on_result)
                    else:
                        i = writing.pop(future)
                        results[i] = future.result()
                        _tick(bar, results[i], on_result)
    finally:
        pool.close()
        if bar is not None:
            bar.close()
    done = [r for r in results if r is not None]
    write_index(done, run_dir, title=title)
    return done


def _tick(bar, result: RunResult | None, on_result) -> None:
    if bar is not None and not bar.disable and result is not None:
        bar.set_postfix_str(f"{result.name}: {result.status}", refresh=False)
        bar.update(1)
    if on_result is not None and result is not None:
        on_result(result)


def write_index(results: Sequence[RunResult], run_dir: Path, *, title: str) -> Path:
    """The run's ``index.html`` and ``summary.json``."""
    from pgrunbooks.report import index_html

    def rel(p: Path | None) -> str | None:
        return os.path.relpath(p, run_dir) if p else None

    entries = [
        IndexEntry(
            name=r.name, status=r.status, counts=r.counts, html=rel(r.html), ipynb=rel(r.ipynb),
            findings=rel(r.findings_json), error=r.error.one_line() if r.error else None,
            seconds=r.seconds, worst=r.worst.value,
        )
        for r in results
    ]
    index = run_dir / "index.html"
    index.write_text(index_html(entries, title=title, subtitle=f"run {run_dir.name}"), encoding="utf-8")
    summary = {
        "run": run_dir.name,
        "title": title,
        "runbooks": [r.to_dict(relative_to=run_dir) for r in results],
    }
    (run_dir / "summary.json").write_text(json.dumps(redact_tree(summary), indent=2, default=str) + "\n", encoding="utf-8")
    return index


def exit_code(results: Sequence[RunResult], fail_on: str = DEFAULT_FAIL_ON) -> int:
    """2 if any runbook failed, else 1 if any finding is at or above ``fail_on``, else 0."""
    if any(r.status != OK for r in results):
        return 2
    if str(fail_on).lower() == "none":
        return 0
    level = Severity.parse(fail_on)
    return 1 if any(at_or_above(r.findings, level) for r in results) else 0


def parse_fail_on(value: str) -> str:
    value = str(value).strip().lower()
    if value == "none":
        return value
    return Severity.parse(value).value


# --------------------------------------------------------------------------------------
# Console
# --------------------------------------------------------------------------------------
_COLUMNS = [("critical", "crit"), ("error", "err"), ("warning", "warn"), ("info", "info"), ("skipped", "skip"), ("ok", "ok")]


def summary_table(results: Sequence[RunResult], run_dir: Path, *, cwd: Path | None = None) -> str:
    """The console table: runbook, status, counts per severity, report path."""
    cwd = cwd or Path.cwd()

    def shown(p: Path | None) -> str:
        if p is None:
            return "-"
        try:
            rel = os.path.relpath(p, cwd)
            return rel if not rel.startswith("..") else str(p)
        except ValueError:
            return str(p)

    header = ["runbook", "status", *[short for _, short in _COLUMNS], "time", "report"]
    rows = []
    for r in results:
        counts = r.counts
        rows.append([r.name, r.status, *[str(counts.get(sev, 0)) for sev, _ in _COLUMNS], f"{r.seconds:.1f}s", shown(r.html)])
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    numeric = set(range(2, 2 + len(_COLUMNS) + 1))

    def fmt(row: list[str]) -> str:
        return "  ".join(str(v).rjust(w) if i in numeric else str(v).ljust(w) for i, (v, w) in enumerate(zip(row, widths))).rstrip()

    lines = [fmt(header), fmt(["-" * w for w in widths])]
    lines += [fmt(row) for row in rows]
    for r in results:
        if r.error:
            lines.append(f"{r.name}: FAILED — {r.error.one_line()}")
            hint = r.error.hint()
            if hint:
                lines.append(f"  {hint}")
    total: dict[str, int] = {}
    for r in results:
        for k, v in r.counts.items():
            total[k] = total.get(k, 0) + v
    failed = sum(r.status != OK for r in results)
    lines.append(f"findings: {counts_text(total)}; {len(results)} runbook(s), {failed} failed")
    lines.append(f"reports:  {shown(run_dir / 'index.html')}")
    return redact("\n".join(lines))
