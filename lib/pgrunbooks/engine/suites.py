"""Suites: ``params/<name>.yaml`` files naming runbooks and the values they share."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pgrunbooks.engine import params as _params
from pgrunbooks.engine.catalog import find_runbook
from pgrunbooks.engine.prepare import Prepared, prepare_or_problems, raise_all, unique_stems
from pgrunbooks.errors import ParameterError, UsageError
from pgrunbooks.paths import params_dir, runbooks_dir


@dataclass
class SuiteEntry:
    """One runbook of a suite and its own values."""

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
    path = _suite_path(name_or_path)
    data = _params.load_yaml(path)
    if not isinstance(data, dict) or not isinstance(data.get("runbooks"), list):
        raise ParameterError(f"suite {path} must be a mapping with a 'runbooks:' list")
    shared = data.get("params") or {}
    if not isinstance(shared, dict):
        raise ParameterError(f"suite {path}: 'params' must be a mapping")
    return Suite(
        name=path.stem,
        path=path,
        description=str(data.get("description") or ""),
        params={str(k): _params.plain(v) for k, v in shared.items()},
        entries=[_entry(path, i, item) for i, item in enumerate(data["runbooks"])],
    )


def _suite_path(name_or_path: str) -> Path:
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") or candidate.is_file():
        path = candidate
    else:
        if not re.match(r"^[A-Za-z0-9_.-]+$", name_or_path):
            raise UsageError(f"invalid suite name {name_or_path!r}")
        path = params_dir() / f"{name_or_path}.yaml"
    if not path.is_file():
        available = sorted(p.stem for p in path.parent.glob("*.yaml") if looks_like_suite(p)) if path.parent.is_dir() else []
        raise UsageError(
            f"unknown suite {name_or_path!r} (no {path})",
            hint=f"available suites: {', '.join(available)}" if available else "suites are YAML files under params/",
        )
    return path


def _entry(path: Path, i: int, item: Any) -> SuiteEntry:
    if isinstance(item, str):
        return SuiteEntry(item)
    if isinstance(item, dict) and isinstance(item.get("name"), str):
        extra = set(item) - {"name", "params"}
        if extra:
            raise ParameterError(f"suite {path}: runbook #{i + 1} has unknown keys {sorted(extra)}")
        p = item.get("params") or {}
        if not isinstance(p, dict):
            raise ParameterError(f"suite {path}: params of {item['name']} must be a mapping")
        return SuiteEntry(item["name"], {str(k): _params.plain(v) for k, v in p.items()})
    raise ParameterError(f"suite {path}: runbook #{i + 1} must be a name or a mapping with 'name'")


def looks_like_suite(path: Path) -> bool:
    """Whether a YAML file under ``params/`` is a suite (it has a ``runbooks:`` key), not a params file."""
    try:
        return "\nrunbooks:" in "\n" + path.read_text()
    except OSError:
        return False


def prepare_suite(suite: Suite, *, extra: dict[str, Any] | None = None, raw: dict[str, str] | None = None,
                  target: str | None = None) -> list[Prepared]:
    """Prepare every runbook of ``suite``; shared values go to the runbooks that declare them.

    A shared value (suite ``params:``, ``-f``/``-p``) that no runbook of the suite declares is
    an error; per-runbook values are strict. Every problem is reported at once.
    """
    extra = dict(extra or {})
    raw = dict(raw or {})
    shared = {**suite.params, **extra}
    prepared: list[Prepared] = []
    problems: list[Exception] = []
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
            one, errors = prepare_or_problems(runbook, mine, raw=mine_raw, target=target)
            problems.extend(errors)
            if one is not None:
                prepared.append(one)
        except UsageError as exc:
            problems.append(exc)
    unused = [k for k in shared if k not in declared and k not in _params.UNIVERSAL]
    if unused:
        problems.append(ParameterError(f"parameter(s) {', '.join(sorted(unused))} are declared by no runbook of suite {suite.name}"))
    # A problem the runbooks share (an unset env:VAR target, the sandbox down) is said once.
    unique = list({str(e): e for e in problems}.values())
    raise_all(unique, f"suite {suite.name} ({suite.path})")
    unique_stems(prepared)
    return prepared
