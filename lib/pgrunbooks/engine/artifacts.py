"""A run's files: per runbook ``<stem>.ipynb``, ``<stem>.html``, ``<stem>.findings.json`` (and
``<stem>.log`` when the kernel said something), per run ``index.html`` and ``summary.json``,
all under ``<out>/<UTC timestamp>/`` and every secret redacted. ``summary.json`` also says what
changed since the previous run of the same suite and target (:mod:`pgrunbooks.history.runs`).

The findings are the ones the notebook recorded (display outputs of type
:data:`~pgrunbooks.findings.FINDINGS_MIME`), minus the suppressed ones.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from pgrunbooks.engine import html as report
from pgrunbooks.engine.execute import Executed
from pgrunbooks.engine.results import FAILED, OK, RunResult
from pgrunbooks.errors import PgRunbooksError, UsageError
from pgrunbooks.findings import ATTACHMENT_MIME, FINDINGS_MIME, Finding, suppress
from pgrunbooks.history.diff import Entry

if TYPE_CHECKING:
    from pgrunbooks.history.runs import RunHistory


def new_run_dir(out: Path | str) -> Path:
    """``<out>/<UTC timestamp>`` (``-2``, ``-3``… when that second is taken)."""
    out = Path(out).expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    for n in range(1, 1000):
        candidate = out / (stamp if n == 1 else f"{stamp}-{n}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
    raise UsageError(f"cannot create a run directory under {out}")


def collect_findings(nb) -> list[Finding]:
    """Every finding recorded in the executed notebook (all ``record()`` calls, in order,
    identical duplicates dropped)."""
    found: list[Finding] = []
    seen: set[str] = set()
    for cell in nb.cells if nb is not None else ():
        for output in cell.get("outputs", []) or []:
            payload = (output.get("data") or {}).get(FINDINGS_MIME)
            if isinstance(payload, str):
                try:
                    payload = json.loads(payload)
                except ValueError:
                    continue
            if payload is None:
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


def pop_attachments(nb) -> dict[str, object]:
    """The documents the notebook attached (:func:`pgrunbooks.notebook.attach`), by name,
    removed from ``nb`` (the last one of a name wins); outputs left empty are dropped."""
    found: dict[str, object] = {}
    for cell in nb.cells if nb is not None else ():
        kept = []
        for output in cell.get("outputs", []) or []:
            data = output.get("data") or {}
            payload = data.get(ATTACHMENT_MIME)
            if payload is None:
                kept.append(output)
                continue
            if isinstance(payload, str):
                try:
                    payload = json.loads(payload)
                except ValueError:
                    payload = None
            if isinstance(payload, dict) and isinstance(payload.get("name"), str):
                name = Path(payload["name"]).name
                if name.endswith(".json") and not name.startswith("."):
                    found[name] = payload.get("content")
        if "outputs" in cell:
            cell["outputs"] = kept
    return found


def write(executed: Executed, run_dir: Path, *, show_code: bool = False) -> RunResult:
    """The runbook's result, its files written: the redacted notebook, the HTML report
    (code cells shown only with ``show_code``), the kernel's log, the findings JSON."""
    import nbformat

    result = _result(executed)
    stem = executed.prepared.stem or executed.prepared.runbook.stem
    run_dir.mkdir(parents=True, exist_ok=True)
    clean = nbformat.from_dict(report.redact_tree(executed.nb))
    for name, content in pop_attachments(clean).items():
        path = run_dir / f"{stem}.{name}"
        _write_json(path, content)
        result.attachments[name] = path
    result.ipynb = run_dir / f"{stem}.ipynb"
    nbformat.write(clean, str(result.ipynb))
    result.html = run_dir / f"{stem}.html"
    result.html.write_text(_html(result, clean, executed.started_at, show_code), encoding="utf-8")
    if executed.kernel_text:
        result.log = run_dir / f"{stem}.log"
        result.log.write_text(executed.kernel_text + "\n", encoding="utf-8")
    result.findings_json = run_dir / f"{stem}.findings.json"
    document = result.to_dict(relative_to=run_dir)
    document["started_at"] = executed.started_at.isoformat()
    document["findings"] = [f.to_dict() for f in result.findings]
    _write_json(result.findings_json, document)
    return result


def _result(executed: Executed) -> RunResult:
    prepared = executed.prepared
    recorded = collect_findings(executed.nb)
    findings = suppress(recorded, prepared.suppress) if prepared.suppress else recorded
    return RunResult(
        name=prepared.runbook.name,
        title=prepared.runbook.title,
        status=FAILED if executed.error else OK,
        findings=findings,
        suppressed=len(recorded) - len(findings),
        error=executed.error,
        seconds=executed.seconds,
        parameters=dict(prepared.parameters),
        target=prepared.target,
    )


def _html(result: RunResult, nb, started_at: _dt.datetime, show_code: bool) -> str:
    """The report page (redacted by the exporter); a plain one if nbconvert itself breaks."""
    error = result.error.one_line() if result.error else None
    meta = {
        "runbook": result.name,
        "status": result.status + (f" — {error}" if error else ""),
        "target": result.target,
        "started": started_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
        "duration": f"{result.seconds:.1f}s",
        "suppressed": result.suppressed or None,
    }
    try:
        return report.export_html(
            nb,
            findings=result.findings,
            title=f"{result.name} — {result.title}" if result.title and result.title != result.name else result.name,
            status=result.status,
            error=error,
            show_code=show_code,
            meta=meta,
            parameters=result.parameters,
        )
    except Exception as exc:  # the report must exist even if conversion breaks
        return report.fallback_html(result.name, result.findings, result.status, error,
                                    f"HTML conversion failed: {type(exc).__name__}: {exc}")


def write_index(results: Sequence[RunResult], run_dir: Path, *, title: str, history: RunHistory | None = None) -> Path:
    """The run's ``index.html`` and ``summary.json``.

    With ``history`` (its diff computed: :meth:`~pgrunbooks.history.runs.RunHistory.compare`)
    the page opens with what changed since the previous run, and ``summary.json`` carries the
    run's suite, target and start, the keys ``previous_run``, ``new``, ``resolved``, ``open``
    (``unchecked``), and each runbook's findings by key, which is what a later run diffs
    against when the history store cannot be reached."""

    def rel(p: Path | None) -> str | None:
        return os.path.relpath(p, run_dir) if p else None

    entries = [
        report.IndexEntry(
            name=r.name, status=r.status, counts=r.counts, html=rel(r.html), ipynb=rel(r.ipynb),
            findings=rel(r.findings_json), error=r.error.one_line() if r.error else None,
            seconds=r.seconds, worst=r.worst.value, worst_findings=r.findings,
        )
        for r in results
    ]
    diff = history.diff if history is not None else None
    index = run_dir / "index.html"
    index.write_text(report.index_html(entries, title=title, subtitle=f"run {run_dir.name}", diff=diff), encoding="utf-8")
    summary = {"run": run_dir.name, "title": title}
    if history is not None:
        summary.update(history.identity())
    if diff is not None:
        summary.update(diff.to_dict())
    summary["runbooks"] = [_summary_entry(r, run_dir) for r in results]
    _write_json(run_dir / "summary.json", summary)
    return index


def _summary_entry(result: RunResult, run_dir: Path) -> dict:
    """A runbook in ``summary.json``: its result and its findings by key (``{key, check_id,
    severity, object, title}``; the full findings are in its ``findings.json``)."""
    entry = result.to_dict(relative_to=run_dir)
    entry["findings"] = [Entry.of(f).to_dict() for f in result.findings]
    return entry


def _write_json(path: Path, document: dict) -> None:
    path.write_text(json.dumps(report.redact_tree(document), indent=2, default=str) + "\n", encoding="utf-8")
