"""Preparing a run: everything that can be checked without a kernel or a connection.

:func:`prepare` merges and validates a runbook's parameters against its ``parameters``
cell and resolves (never connects to) its target. Any problem is a
:class:`~pgrunbooks.errors.UsageError` (exit 3) raised before a kernel starts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from pgrunbooks.engine import params as _params
from pgrunbooks.engine.catalog import Runbook
from pgrunbooks.notebook.diagnostics import CHECKS_PARAMETER, check_ids


@dataclass
class Prepared:
    """A runbook with validated parameters and a resolved (not connected) target."""

    runbook: Runbook
    parameters: dict[str, Any]
    target: str | None = None  # redacted, for display
    suppress: list[str] = field(default_factory=list)
    stem: str = ""  # its artifacts' file stem, unique within the run


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
    if CHECKS_PARAMETER in spec:  # a diagnostic runbook's declared checks: unknown ids are exit 3 now
        check_ids(injected.get(CHECKS_PARAMETER, spec[CHECKS_PARAMETER].default))
    shown_target = None
    if _params.TARGET in spec:
        effective = injected.get(_params.TARGET, spec[_params.TARGET].default)
        if isinstance(effective, str):
            shown_target = str(resolve(effective))  # TargetError (exit 3) without connecting
    suppress_keys = list(injected.get(_params.SUPPRESS) or [])
    if _params.SUPPRESS in injected and not injected[_params.SUPPRESS] and _params.SUPPRESS not in spec:
        injected.pop(_params.SUPPRESS)
    return Prepared(runbook, injected, shown_target, suppress_keys, runbook.stem)


def unique_stems(prepared: Sequence[Prepared]) -> None:
    """Give each prepared runbook a file stem of its own (``-2``, ``-3``… for repeats)."""
    seen: dict[str, int] = {}
    for p in prepared:
        n = seen.get(p.runbook.stem, 0) + 1
        seen[p.runbook.stem] = n
        p.stem = p.runbook.stem if n == 1 else f"{p.runbook.stem}-{n}"
