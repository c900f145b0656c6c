"""What counts as confirming a plan: ``confirm_matches(plan.confirm, given)``.

A plan asks for a value only someone who read it knows: the number of rows to move, the
database name, the list of target pids. ``None`` and booleans never confirm anything.
"""

from __future__ import annotations

from typing import Any


def _as_pid_set(value: Any) -> set[int] | None:
    if isinstance(value, int) and not isinstance(value, bool):  # one pid, e.g. -p confirm=1234
        return {value}
    if isinstance(value, str):
        parts = [p for p in value.replace(";", ",").replace(" ", ",").split(",") if p]
        try:
            return {int(p) for p in parts}
        except ValueError:
            return None
    if isinstance(value, (list, tuple, set, frozenset)):
        try:
            return {int(p) for p in value}
        except (TypeError, ValueError):
            return None
    return None


def confirm_matches(expected: Any, given: Any) -> bool:
    """Does ``given`` confirm ``expected``? Ints compare as numbers (``"12"`` is 12), lists as sets."""
    if given is None or isinstance(given, bool):
        return False
    if isinstance(expected, (list, tuple, set, frozenset)):
        pids = _as_pid_set(given)
        return pids is not None and pids == {int(p) for p in expected}
    if isinstance(expected, int):
        try:
            return int(str(given).replace(",", "").replace("_", "").strip()) == expected
        except ValueError:
            return False
    return str(given).strip() == str(expected)
