"""Value constraints a runbook declares for its parameters, checked before anything connects.

A type inferred from the ``parameters`` cell says ``batch_size`` is an int; it cannot say that
0 is meaningless, that ``"30 sekonds"`` is no interval or that a pid has to fit in an int4.
A runbook therefore declares, in its notebook metadata, what each value must be::

    "pgrunbooks": {
      "parameters": {
        "batch_size": {"type": "int", "min": 1, "max": 1000000},
        "pause": {"type": "number", "min": 0},
        "lock_timeout": {"type": "interval", "unit": "ms", "min": "1ms"},
        "as_of": {"type": "timestamp", "max": "now"},
        "pids": {"type": "list", "items": {"type": "int", "min": 1, "max": 2147483647}},
        "pairs": {"type": "list", "items": {"type": "mapping",
                  "keys": {"older_than": {"type": "interval", "min": "1d"}}}}
      }
    }

Types: ``int`` (bounded by ``min``/``max``, and always by the int8 range: the value goes to
the server), ``number`` (int or float), ``interval`` (PostgreSQL's units, parsed without a
server: ``500ms``, ``5s``, ``30min``, ``1h``, ``2 days``, ``6 months``; a bare number is in
``unit``, default ``s``, as PostgreSQL reads ``lock_timeout = 5000`` in ms), ``timestamp``
(ISO 8601; without a zone it is UTC; ``max: "now"`` refuses the future), ``list`` (each item
checked against ``items``), ``mapping`` (each key present checked against ``keys``) and
``text`` (a string: ``pattern``, a regular expression it must match in full; ``min``/``max``
bound its length). Any type may list ``choices``, the only values allowed
(``{"type": "text", "choices": ["trialing", "active"]}``).
``None`` always passes here: whether a value may be missing is the parameters cell's business.
"""

from __future__ import annotations

import datetime as _dt
import re
from typing import Any, Mapping

INT8_MIN, INT8_MAX = -(2**63), 2**63 - 1
TYPES = ("int", "number", "interval", "timestamp", "list", "mapping", "text")
_KEYS = {"type", "min", "max", "unit", "items", "keys", "help", "choices", "pattern"}

# PostgreSQL's interval and GUC time units, in seconds (a month is 30 days, a year 365.25, as in PostgreSQL).
_UNITS = {
    "us": 1e-6, "microsecond": 1e-6, "microseconds": 1e-6,
    "ms": 1e-3, "millisecond": 1e-3, "milliseconds": 1e-3,
    "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
    "min": 60, "mins": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
    "w": 604800, "week": 604800, "weeks": 604800,
    "mon": 2592000, "mons": 2592000, "month": 2592000, "months": 2592000,
    "y": 31557600, "yr": 31557600, "yrs": 31557600, "year": 31557600, "years": 31557600,
}
_PART = re.compile(r"\s*([+-]?\d+(?:\.\d+)?)\s*([A-Za-z]*)")


class ConstraintSpecError(ValueError):
    """A runbook's ``pgrunbooks.parameters`` metadata is malformed (a bug in the runbook)."""


def interval_seconds(text: Any, unit: str = "s") -> float:
    """``"5min"``, ``"1 hour 30 minutes"``, ``"500 ms"`` or a bare number (in ``unit``) -> seconds.

    Raises ``ValueError`` for anything PostgreSQL would not read as an interval of these units."""
    if isinstance(text, bool):
        raise ValueError(text)
    if isinstance(text, (int, float)):
        return float(text) * _UNITS[unit]
    if not isinstance(text, str) or not text.strip():
        raise ValueError(text)
    total, pos, parts = 0.0, 0, 0
    body = text.strip()
    while pos < len(body):
        match = _PART.match(body, pos)
        if not match or match.end() == pos:
            raise ValueError(text)
        number, name = match.groups()
        factor = _UNITS.get(name.lower()) if name else (_UNITS[unit] if parts == 0 and match.end() == len(body) else None)
        if factor is None:
            raise ValueError(text)
        total += float(number) * factor
        pos, parts = match.end(), parts + 1
        while pos < len(body) and body[pos] in " ,":
            pos += 1
    return total


def parse_timestamp(text: Any) -> _dt.datetime:
    """An ISO 8601 date or timestamp -> an aware datetime (UTC when no zone is written)."""
    if isinstance(text, _dt.datetime):
        value = text
    elif isinstance(text, _dt.date):
        value = _dt.datetime(text.year, text.month, text.day)
    elif isinstance(text, str) and text.strip():
        value = _dt.datetime.fromisoformat(text.strip())
    else:
        raise ValueError(text)
    return value if value.tzinfo else value.replace(tzinfo=_dt.timezone.utc)


def check_spec(declarations: Any, where: str) -> dict[str, dict[str, Any]]:
    """Validate a runbook's declarations themselves; raise :class:`ConstraintSpecError`."""
    if declarations is None:
        return {}
    if not isinstance(declarations, Mapping):
        raise ConstraintSpecError(f"{where}: metadata pgrunbooks.parameters must be a mapping")
    for name, decl in declarations.items():
        _check_decl(decl, f"{where}: parameter {name!r}")
    return {str(k): dict(v) for k, v in declarations.items()}


def _check_decl(decl: Any, where: str) -> None:
    if not isinstance(decl, Mapping) or decl.get("type") not in TYPES:
        raise ConstraintSpecError(f"{where}: a constraint needs a type, one of {', '.join(TYPES)}")
    unknown = set(decl) - _KEYS
    if unknown:
        raise ConstraintSpecError(f"{where}: unknown constraint keys {sorted(unknown)}")
    kind = decl["type"]
    try:
        for bound in ("min", "max"):
            if bound in decl:
                _bound(kind, decl[bound], decl)
    except (ValueError, TypeError, KeyError):
        raise ConstraintSpecError(f"{where}: bad min/max for a {kind}") from None
    if "unit" in decl and decl["unit"] not in _UNITS:
        raise ConstraintSpecError(f"{where}: unknown unit {decl['unit']!r}")
    if "items" in decl:
        _check_decl(decl["items"], f"{where} items")
    if "choices" in decl and not (isinstance(decl["choices"], list) and decl["choices"]):
        raise ConstraintSpecError(f"{where}: choices must be a non-empty list")
    if "pattern" in decl:
        try:
            re.compile(decl["pattern"])
        except (re.error, TypeError):
            raise ConstraintSpecError(f"{where}: pattern must be a regular expression") from None
    for key, sub in (decl.get("keys") or {}).items():
        _check_decl(sub, f"{where} key {key!r}")


def _bound(kind: str, value: Any, decl: Mapping[str, Any]) -> Any:
    if kind == "interval":
        return interval_seconds(value, decl.get("unit", "s"))
    if kind == "timestamp":
        return _dt.datetime.now(_dt.timezone.utc) if value == "now" else parse_timestamp(value)
    if kind in ("int", "number", "list", "mapping", "text"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(value)
        return value
    raise ValueError(kind)


def problems(name: str, value: Any, decl: Mapping[str, Any]) -> list[str]:
    """Every way ``value`` breaks ``decl`` (empty when it is fine); ``name`` labels the messages."""
    if value is None:
        return []
    kind = decl["type"]
    unit = decl.get("unit", "s")
    shown = f"parameter {name!r}" if "[" not in name and "." not in name else name
    if "choices" in decl and value not in decl["choices"]:
        return [f"{shown} must be one of {', '.join(map(repr, decl['choices']))}, got {value!r}"]
    if kind == "text":
        if not isinstance(value, str):
            return [f"{shown} must be a string, got {value!r}"]
        if "pattern" in decl and re.fullmatch(decl["pattern"], value) is None:
            return [f"{shown} does not match the pattern {decl['pattern']}: {value!r}"]
        return _range(f"{shown} (its length)", value, len(value), decl.get("min"), decl.get("max"))
    if kind in ("int", "number"):
        is_int = isinstance(value, int) and not isinstance(value, bool)
        if kind == "int" and not is_int:
            return [f"{shown} must be an integer, got {value!r}"]
        if not is_int and not (isinstance(value, float) and not isinstance(value, bool)):
            return [f"{shown} must be a number, got {value!r}"]
        low = max(decl.get("min", INT8_MIN), INT8_MIN) if is_int else decl.get("min")
        high = min(decl.get("max", INT8_MAX), INT8_MAX) if is_int else decl.get("max")
        return _range(shown, value, value, low, high)
    if kind == "interval":
        try:
            seconds = interval_seconds(value, unit)
        except (ValueError, KeyError):
            return [f"{shown} is not an interval: {value!r} (write e.g. 500ms, 5s, 30min, 1h, 2 days)"]
        low = interval_seconds(decl["min"], unit) if "min" in decl else None
        high = interval_seconds(decl["max"], unit) if "max" in decl else None
        return _range(shown, value, seconds, low, high, decl.get("min"), decl.get("max"))
    if kind == "timestamp":
        try:
            moment = parse_timestamp(value)
        except (ValueError, TypeError):
            return [f"{shown} is not a timestamp: {value!r} (write ISO 8601, e.g. 2026-01-31 or 2026-01-31T00:00:00Z)"]
        high = _bound(kind, decl["max"], decl) if "max" in decl else None
        low = _bound(kind, decl["min"], decl) if "min" in decl else None
        return _range(shown, value, moment, low, high, decl.get("min"), decl.get("max"))
    if kind == "list":
        if not isinstance(value, list):
            return [f"{shown} must be a list, got {value!r}"]
        out = _range(f"{shown} (its length)", len(value), len(value), decl.get("min"), decl.get("max"))
        if "items" in decl:
            for i, item in enumerate(value):
                out += problems(f"{name}[{i}]", item, decl["items"])
        return out
    if not isinstance(value, Mapping):
        return [f"{shown} must be a mapping, got {value!r}"]
    out = []
    for key, sub in (decl.get("keys") or {}).items():
        if key in value:
            out += problems(f"{name}.{key}", value[key], sub)
    return out


def _range(shown: str, value: Any, measure: Any, low: Any, high: Any, low_text: Any = None, high_text: Any = None) -> list[str]:
    if low is not None and measure < low:
        return [f"{shown} must be at least {low_text if low_text is not None else low}, got {value!r}"]
    if high is not None and measure > high:
        return [f"{shown} must be at most {high_text if high_text is not None else high}, got {value!r}"]
    return []
