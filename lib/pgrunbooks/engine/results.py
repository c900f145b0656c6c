"""What a run is asked to do (:class:`Options`) and what it gives back (:class:`RunResult`)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pgrunbooks.engine.html import redact_tree
from pgrunbooks.findings import Finding, Severity, severity_counts, worst
from pgrunbooks.redact import redact

DEFAULT_TIMEOUT_S = 1800  # a whole runbook
DEFAULT_CELL_TIMEOUT_S = 600  # one cell
KERNEL_NAME = "python3"

OK = "ok"
FAILED = "failed"
#: The ``ename`` of a runbook stopped by SIGINT/SIGTERM (the kernel raised it in the running cell).
INTERRUPTED = "KeyboardInterrupt"


@dataclass(frozen=True)
class Options:
    """How to run, built once by the command: time limits and kernel (read by
    :mod:`~pgrunbooks.engine.execute`), report flavour (read by :mod:`~pgrunbooks.engine.artifacts`)."""

    show_code: bool = False
    timeout: float = DEFAULT_TIMEOUT_S
    cell_timeout: float = DEFAULT_CELL_TIMEOUT_S
    start_timeout: float = 60
    kernel_name: str = KERNEL_NAME


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
class RunResult:
    """One runbook's outcome: status, findings, error, and the files written for it."""

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
    attachments: dict[str, Path] = field(default_factory=dict)  # name → file (pgrunbooks.notebook.attach)
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
                "files": {"ipynb": rel(self.ipynb), "html": rel(self.html), "findings": rel(self.findings_json), "log": rel(self.log),
                          **{name: rel(path) for name, path in self.attachments.items()}},
            }
        )

