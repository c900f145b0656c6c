"""Runbook parameters: read the ``parameters`` cell, merge params files and ``-p``, validate.

papermill itself only warns about an unknown parameter and never checks types; a scheduled
run must instead refuse bad input before it starts a kernel or opens a connection. So:

* the spec of a notebook's parameters comes from papermill's ``inspect_notebook``; each
  parameter's type is inferred from its default's literal (``limit = 5`` is an int,
  ``ratio = 0.5`` a float that also takes ints, ``names = []`` a list); a ``None`` default
  whose comment says ``required`` makes the parameter required; other ``None`` defaults and
  non-literal defaults accept any value;
* values merge in order: params files (``-f``, in the order given), then ``-p key=value``
  (parsed as YAML, so ``-p limit=5`` is an int; a string parameter keeps the raw text);
* ``validate`` reports every unknown name (with close matches), wrong type and missing
  required value at once, as a :class:`~pgrunbooks.errors.ParameterError` (exit 3).

Two names are understood by the engine for every runbook: ``target`` (passed only to
notebooks that declare it) and ``suppress`` (finding keys to drop; always accepted).
Parameter values are data: they reach SQL only as bound values or ``psycopg.sql`` identifiers.
"""

from __future__ import annotations

import ast
import datetime as _dt
import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from pgrunbooks.engine import constraints as _constraints
from pgrunbooks.errors import ParameterError

#: Names the engine understands for every runbook.
TARGET = "target"
SUPPRESS = "suppress"
UNIVERSAL = (TARGET, SUPPRESS)

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_REQUIRED = re.compile(r"\brequired\b", re.IGNORECASE)
_TYPE_NAMES = {"bool": bool, "int": int, "float": float, "str": str, "list": list, "dict": dict}
_NOT_LITERAL = object()


@dataclass(frozen=True)
class Parameter:
    """One entry of a notebook's ``parameters`` cell."""

    name: str
    type: str | None  # bool|int|float|str|list|dict, or None (any)
    default: Any  # the literal value, or _NOT_LITERAL
    source: str  # the default as written
    help: str = ""
    required: bool = False

    @property
    def has_literal_default(self) -> bool:
        return self.default is not _NOT_LITERAL

    def describe(self) -> str:
        kind = self.type or "any"
        return f"{self.name} ({'required ' if self.required else ''}{kind}, default {self.source})"


def notebook_parameters(path: Path | str) -> dict[str, Parameter]:
    """The parameters declared in ``path``'s cell tagged ``parameters`` (empty when none)."""
    from papermill import inspect_notebook

    try:
        raw = inspect_notebook(str(path))
    except Exception as exc:  # unreadable notebook: bad usage of the runbook, not a DB problem
        raise ParameterError(f"cannot read the parameters of {path}: {exc}") from None
    found = {name: _parameter(info) for name, info in raw.items()}
    lost = sorted(set(_assigned_names(path)) - set(found))
    if lost:
        # papermill skips a line it cannot parse (e.g. a comment with "=" in it) with a log line only;
        # the parameter would then be refused as unknown at run time.
        raise ParameterError(
            f"papermill cannot read the parameter(s) {', '.join(lost)} of {path}",
            hint="write each as `name = value  # comment`, with no '=' inside the comment",
        )
    return found


def _assigned_names(path: Path | str) -> list[str]:
    """The names assigned at the top level of the notebook's ``parameters`` cell."""
    import json

    try:
        nb = json.loads(Path(path).read_text(encoding="utf-8"))
        cell = next(c for c in nb.get("cells", []) if "parameters" in c.get("metadata", {}).get("tags", []))
        source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        tree = ast.parse(source)
    except (OSError, ValueError, StopIteration, SyntaxError, KeyError):
        return []  # no cell, or a cell papermill reports on itself
    return [t.id for node in tree.body if isinstance(node, (ast.Assign, ast.AnnAssign))
            for t in (node.targets if isinstance(node, ast.Assign) else [node.target]) if isinstance(t, ast.Name)]


def has_parameters_cell(nb: Mapping[str, Any]) -> bool:
    return any("parameters" in c.get("metadata", {}).get("tags", []) for c in nb.get("cells", []))


def _parameter(info: Mapping[str, Any]) -> Parameter:
    name = info["name"]
    source = (info.get("default") or "").strip()
    help_text = (info.get("help") or "").strip()
    try:
        default = ast.literal_eval(source) if source else _NOT_LITERAL
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        default = _NOT_LITERAL
    declared = (info.get("inferred_type_name") or "None").strip()
    kind: str | None = declared if declared in _TYPE_NAMES else None
    if kind is None and default is not _NOT_LITERAL and default is not None:
        kind = _type_name(default)
    required = default is None and bool(_REQUIRED.search(help_text))
    return Parameter(name, kind, default, source, help_text, required)


def _type_name(value: Any) -> str | None:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, (list, tuple, set)):
        return "list"
    if isinstance(value, dict):
        return "dict"
    return None


# --------------------------------------------------------------------------------------
# Sources: files and -p
# --------------------------------------------------------------------------------------
def load_yaml(path: Path | str) -> Any:
    """Parse a YAML file; a missing or malformed file is a usage error (exit 3)."""
    import yaml

    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ParameterError(f"cannot read params file {path}: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:  # found now, not by the report writer after an apply
        line = data[: exc.start].count(b"\n") + 1
        raise ParameterError(
            f"{path} is not UTF-8: byte {data[exc.start]:#04x} at line {line}", hint="save the file as UTF-8"
        ) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise ParameterError(f"params file {path} is not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None


def load_params_file(path: Path | str) -> dict[str, Any]:
    """A params file: a YAML mapping of parameter names to values (empty file = no values)."""
    data = load_yaml(path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ParameterError(f"params file {path} must be a mapping of name: value, not {type(data).__name__}")
    if "runbooks" in data:
        raise ParameterError(
            f"{path} is a suite definition, not a params file", hint=f"run it with `pgrunbooks suite {path}`"
        )
    for key in data:
        _check_name(key, f"in {path}")
    return {str(k): plain(v) for k, v in data.items()}


def parse_assignment(text: str) -> tuple[str, Any, str]:
    """``key=value`` -> (key, YAML-parsed value, raw text)."""
    import yaml

    require_utf8(text, "-p")
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep:
        raise ParameterError(f"-p {text!r}: expected key=value", hint="for example -p limit=5 or -p target=local")
    _check_name(key, f"in -p {text!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key, plain(value), raw


def merge(
    files: Iterable[Path | str] = (), assignments: Iterable[str] = (), *, base: Mapping[str, Any] | None = None
) -> tuple[dict[str, Any], dict[str, str]]:
    """Merge ``base``, then files in order, then ``-p`` assignments.

    Returns (values, raw): ``raw`` keeps the text of ``-p`` values so a string parameter
    receives exactly what was typed (``-p tenant=0042`` stays ``"0042"``).
    """
    values: dict[str, Any] = dict(base or {})
    raw: dict[str, str] = {}
    for path in files:
        for key, value in load_params_file(path).items():
            values[key] = value
            raw.pop(key, None)
    for text in assignments:
        key, value, raw_text = parse_assignment(text)
        values[key] = value
        raw[key] = raw_text
    return values, raw


def require_utf8(text: str, where: str) -> None:
    """Refuse text holding bytes that are not UTF-8 (a terminal in another encoding).

    Python hands such command-line bytes over as lone surrogates; they would reach the
    notebook and the database and only fail when the report is written."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = text[exc.start].encode("utf-8", "surrogateescape")
        shown = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        raise ParameterError(
            f"{where} {shown!r} is not UTF-8 (byte {bad[0]:#04x} at character {exc.start + 1})",
            hint="type the value in UTF-8 (check LANG/LC_ALL of the terminal)",
        ) from None


def _check_name(key: Any, where: str) -> None:
    if not isinstance(key, str) or not _IDENT.match(key):
        raise ParameterError(f"invalid parameter name {key!r} {where}", hint="names are Python identifiers: limit, target, dry_run")


def plain(value: Any) -> Any:
    """YAML values as papermill can inject them (dates become ISO strings)."""
    if isinstance(value, (_dt.date, _dt.datetime)):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [plain(v) for v in value]
    return value


# --------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------
def validate(
    values: Mapping[str, Any],
    spec: Mapping[str, Parameter],
    *,
    runbook: str,
    raw: Mapping[str, str] | None = None,
    has_cell: bool = True,
    ignore_unknown: Iterable[str] = (),
    constraints: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Check ``values`` against ``spec`` and the runbook's declared ``constraints``
    (:mod:`pgrunbooks.engine.constraints`); return the values to inject.

    Raises one :class:`ParameterError` listing every problem. ``target`` is dropped when the
    notebook does not declare it; ``suppress`` is always kept (the engine applies it too).
    ``ignore_unknown`` names are silently dropped when undeclared (suite-wide values).
    """
    raw = raw or {}
    ignore = set(ignore_unknown)
    problems: list[str] = []
    out: dict[str, Any] = {}
    for name, value in values.items():
        if name == SUPPRESS:
            out[name] = _suppress_value(value, problems)
            continue
        param = spec.get(name)
        if param is None:
            if name == TARGET or name in ignore:
                continue
            close = difflib.get_close_matches(name, list(spec), n=3, cutoff=0.6)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            problems.append(f"unknown parameter {name!r}{hint}")
            continue
        ok, converted = check_type(param, value, raw.get(name))
        if not ok:
            problems.append(
                f"parameter {name!r} must be {_article(param.type)} (default {param.source}), got {type(value).__name__} {value!r}"
            )
            continue
        if name in (constraints or {}):
            found = _constraints.problems(name, converted, constraints[name])
            if found:
                problems.extend(found)
                continue
        out[name] = converted
    for param in spec.values():
        if param.required and out.get(param.name) is None:
            problems.append(f"parameter {param.name!r} is required: {param.help}")
    if not has_cell and any(k not in UNIVERSAL for k in values) and not problems:
        problems.append("the notebook has no cell tagged 'parameters'")
    if problems:
        known = ", ".join(p.describe() for p in spec.values()) or "none"
        raise ParameterError(
            f"bad parameters for {runbook}:\n  - " + "\n  - ".join(problems),
            hint=f"parameters of {runbook}: {known}",
        )
    return out


def check_type(param: Parameter, value: Any, raw: str | None = None) -> tuple[bool, Any]:
    """(ok, value to inject) for ``value`` against ``param``'s inferred type."""
    kind = param.type
    if value is None:
        return (not param.required), None
    if kind is None:
        return True, value
    if kind == "str":
        if isinstance(value, str):
            return True, value
        if raw is not None:  # -p tenant=0042: the text as typed
            return True, raw
        return False, value
    if kind == "bool":
        return isinstance(value, bool), value
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool), value
    if kind == "float":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return ok, float(value) if ok else value
    if kind == "list":
        return isinstance(value, list), value
    if kind == "dict":
        return isinstance(value, dict), value
    return True, value


def _suppress_value(value: Any, problems: list[str]) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, (str, int)) for v in value):
        return [str(v) for v in value]
    problems.append(f"parameter 'suppress' must be a list of finding keys, got {value!r}")
    return []


def _article(kind: str | None) -> str:
    return {"int": "an int", "float": "a number", "str": "a string", "bool": "a bool (true/false)", "list": "a list", "dict": "a mapping"}.get(
        kind or "", "a value"
    )
