"""Thresholds: registry defaults merged with a caller's overrides, validated before anything runs.

Overrides have the shape ``{"dead_tuples": {"warning": 0.1}}`` (runbook parameters, API)
or ``["dead_tuples.warning=0.1", …]`` (the CLI's ``--threshold``). An unknown check or
threshold name, or a value of the wrong type, is a :class:`~pgrunbooks.errors.UsageError`
(exit 3) naming the valid choices. A threshold set to ``None`` switches that test off.
"""

from __future__ import annotations

import difflib
import json
from typing import Any, Iterable, Mapping

from pgrunbooks.errors import UsageError

Overrides = Mapping[str, Mapping[str, Any]]


def resolve(check, overrides: Overrides | None) -> dict[str, Any]:
    """The thresholds ``check`` runs with: its defaults, then the caller's values."""
    merged = dict(check.thresholds)
    for name, value in ((overrides or {}).get(check.id) or {}).items():
        merged[name] = coerce(check, name, value)
    return merged


def validate(overrides: Overrides | None, registry: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Check every override names a known check and threshold and has a usable value."""
    if overrides is None:
        return {}
    if not isinstance(overrides, Mapping):
        raise UsageError(
            f"thresholds must be a mapping of check id to {{name: value}}, not {type(overrides).__name__}",
            hint='for example {"dead_tuples": {"warning": 0.1}}',
        )
    out: dict[str, dict[str, Any]] = {}
    problems: list[UsageError] = []
    for check_id, values in overrides.items():
        check = registry.get(check_id)
        if check is None:
            close = difflib.get_close_matches(str(check_id), list(registry), n=3, cutoff=0.6)
            problems.append(UsageError(
                f"thresholds: unknown check {check_id!r}" + (f" (did you mean {', '.join(close)}?)" if close else ""),
                hint="known checks: " + ", ".join(registry),
            ))
            continue
        if not isinstance(values, Mapping):
            problems.append(UsageError(
                f"thresholds for {check_id} must be a mapping of name to value",
                hint=f"known names: {', '.join(check.thresholds) or '(none)'}",
            ))
            continue
        for name, value in values.items():
            try:
                out.setdefault(check_id, {})[name] = coerce(check, name, value)
            except UsageError as exc:
                problems.append(exc)
    if len(problems) == 1:
        raise problems[0]
    if problems:  # every problem at once, each with its own hint
        raise UsageError("bad thresholds:\n  - " + "\n  - ".join(str(p).replace("\n", "\n    ") for p in problems), hint="")
    return out


def coerce(check, name: str, value: Any) -> Any:
    """``value`` converted to the type of the default (numbers stay numbers, lists stay lists)."""
    if name not in check.thresholds:
        raise UsageError(
            f"{check.id} has no threshold {name!r}",
            hint=f"{check.id} thresholds: {', '.join(check.thresholds) or '(none)'}",
        )
    default = check.thresholds[name]
    if value is None:
        return None
    try:
        if isinstance(default, bool):
            if isinstance(value, str):
                if value.lower() in ("1", "true", "yes", "on"):
                    return True
                if value.lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError(value)
            return bool(value)
        if isinstance(default, (list, tuple)):
            if isinstance(value, str):
                value = [v.strip() for v in value.split(",") if v.strip()]
            if not isinstance(value, (list, tuple)):
                raise ValueError(value)
            return [str(v) for v in value]
        if isinstance(default, int) and not isinstance(value, bool):
            number = float(value)
            return int(number) if number.is_integer() else number
        if isinstance(default, float) or default is None:
            if isinstance(value, bool):
                raise ValueError(value)
            return float(value)
        return str(value)
    except (TypeError, ValueError):
        kind = type(default).__name__ if default is not None else "number"
        raise UsageError(f"{check.id}.{name}: {value!r} is not a valid {kind}") from None


def parse_assignments(items: Iterable[str]) -> dict[str, dict[str, Any]]:
    """``["dead_tuples.warning=0.1", …]`` -> ``{"dead_tuples": {"warning": "0.1"}}`` (strings; coerce later).

    A JSON value (``null``, ``[..]``, a number) is decoded; anything else stays a string.
    """
    out: dict[str, dict[str, Any]] = {}
    for item in items or ():
        key, sep, raw = item.partition("=")
        check_id, dot, name = key.strip().partition(".")
        if not sep or not dot or not check_id or not name:
            raise UsageError(f"bad threshold {item!r}", hint="write CHECK.NAME=VALUE, e.g. dead_tuples.warning=0.1")
        raw = raw.strip()
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        out.setdefault(check_id, {})[name.strip()] = value
    return out
