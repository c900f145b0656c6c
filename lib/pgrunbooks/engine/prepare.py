"""Preparing a run: everything that can be checked without a kernel or a connection.

:func:`prepare` merges and validates a runbook's parameters against its ``parameters``
cell and resolves (never connects to) its target. Any problem is a
:class:`~pgrunbooks.errors.UsageError` (exit 3) raised before a kernel starts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from pgrunbooks.checks import thresholds as _thresholds
from pgrunbooks.engine import params as _params
from pgrunbooks.engine.constraints import ConstraintSpecError, check_spec
from pgrunbooks.errors import ConnectError, ParameterError, UsageError
from pgrunbooks.engine.catalog import Runbook
from pgrunbooks.notebook.diagnostics import CHECKS_PARAMETER, check_ids


THRESHOLDS_PARAMETER = "thresholds"  # a diagnostic runbook's per-check overrides


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
    """Validate ``values`` for ``runbook`` and resolve its target; raise before anything runs.

    Every problem is reported at once: one alone is raised as it is (a :class:`TargetError`
    stays one), several as one :class:`ParameterError` listing them."""
    prepared, errors = prepare_or_problems(runbook, values, raw=raw, target=target, ignore_unknown=ignore_unknown)
    raise_all(errors, runbook.name)
    return prepared


def raise_all(errors: Sequence[Exception], what: str) -> None:
    """Raise ``errors`` as one; nothing when empty. Bad input (exit 3) is the first thing to
    fix, so a connect error alone is raised as it is, and with usage errors it is listed with them."""
    if len(errors) == 1 or (errors and not any(isinstance(e, UsageError) for e in errors)):
        raise errors[0]
    if errors:
        raise ParameterError(f"{what} cannot run:\n" + "\n".join(str(e) for e in errors), hint="")


def prepare_or_problems(
    runbook: Runbook,
    values: dict[str, Any],
    *,
    raw: dict[str, str] | None = None,
    target: str | None = None,
    ignore_unknown: Iterable[str] = (),
) -> tuple[Prepared | None, list[Exception]]:
    """:func:`prepare` collecting its problems: (the prepared runbook, []) or (None, every problem).

    Only a broken runbook (malformed metadata) or non-UTF-8 ``--target`` text raises at once.

    A suite collects these over all its runbooks, so a problem they share (an unset
    ``env:VAR`` target) is reported once."""
    from pgrunbooks.targets import resolve

    spec = _params.notebook_parameters(runbook.path)
    values = dict(values)
    raw = dict(raw or {})
    if target is not None:
        _params.require_utf8(target, "--target")
        values[_params.TARGET] = target
        raw.pop(_params.TARGET, None)
    has_cell = _params.has_parameters_cell(json.loads(runbook.path.read_text()))
    try:
        constraints = check_spec(runbook.metadata.get("parameters"), runbook.name)
    except ConstraintSpecError as exc:
        raise UsageError(str(exc), hint="fix the runbook's metadata pgrunbooks.parameters (docs/authoring.md)") from None
    errors: list[Exception] = []  # every problem at once: parameters, checks, thresholds, target
    try:
        injected = _params.validate(
            values, spec, runbook=runbook.name, raw=raw, has_cell=has_cell, ignore_unknown=ignore_unknown,
            constraints=constraints,
        )
        checked = injected
    except UsageError as exc:
        errors.append(exc)
        # the values the next checks need, as far as their type is right (a wrong one is reported already)
        checked = {
            k: v for k, v in values.items()
            if k in (CHECKS_PARAMETER, THRESHOLDS_PARAMETER, _params.TARGET) and k in spec
            and _params.check_type(spec[k], v, raw.get(k))[0]
        }
        injected = {}

    def effective(name: str) -> Any:
        return checked.get(name, spec[name].default if name in spec else None)

    shown_target = None
    for step in ("checks", "thresholds", "target"):
        try:
            if step == "checks" and CHECKS_PARAMETER in spec:  # a diagnostic runbook's checks: unknown ids are exit 3 now
                check_ids(effective(CHECKS_PARAMETER))
            elif step == "thresholds" and THRESHOLDS_PARAMETER in spec:  # not "skipped" later
                from pgrunbooks.checks import REGISTRY

                _thresholds.validate(effective(THRESHOLDS_PARAMETER), REGISTRY)
            elif step == "target" and _params.TARGET in spec and isinstance(effective(_params.TARGET), str):
                shown_target = str(resolve(effective(_params.TARGET)))  # TargetError (exit 3) without connecting
        except UsageError as exc:
            errors.append(exc)
        except ConnectError as exc:  # the sandbox is down: bad input, if any, is the first thing to fix
            errors.append(exc)
    if errors:
        return None, errors
    suppress_keys = list(injected.get(_params.SUPPRESS) or [])
    if _params.SUPPRESS in injected and not injected[_params.SUPPRESS] and _params.SUPPRESS not in spec:
        injected.pop(_params.SUPPRESS)
    return Prepared(runbook, injected, shown_target, suppress_keys, runbook.stem), []


def unique_stems(prepared: Sequence[Prepared]) -> None:
    """Give each prepared runbook a file stem of its own (``-2``, ``-3``… for repeats)."""
    seen: dict[str, int] = {}
    for p in prepared:
        n = seen.get(p.runbook.stem, 0) + 1
        seen[p.runbook.stem] = n
        p.stem = p.runbook.stem if n == 1 else f"{p.runbook.stem}-{n}"
