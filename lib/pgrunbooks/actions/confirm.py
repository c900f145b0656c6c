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


def drift_allowance(max_drift: Any, planned: int) -> int:
    """How many rows a count may move from the ``planned`` one and still be the same plan.

    ``max_drift``: a number of rows (an int ≥ 0), a fraction of the planned rows (a float
    below 1, e.g. 0.01), or ``None`` for the default, 1 % of the plan and at least 100 rows
    (live tables drift a little: a late webhook writes an old timestamp).
    """
    from pgrunbooks.errors import UsageError

    if max_drift is None:
        return max(100, planned // 100)
    if isinstance(max_drift, bool) or not isinstance(max_drift, (int, float)) or max_drift < 0:
        raise UsageError(
            f"max_drift must be a number of rows (≥ 0) or a fraction below 1, not {max_drift!r}",
            hint="e.g. max_drift=100 (rows) or max_drift=0.01 (1 % of the plan)",
        )
    if isinstance(max_drift, float) and max_drift < 1:
        return int(planned * max_drift)
    return int(max_drift)


def confirm_drift(expected: Any, given: Any, max_drift: Any) -> int | None:
    """``given - expected`` when both are row counts less than :func:`drift_allowance` apart, else ``None``."""
    if not isinstance(expected, int) or isinstance(expected, bool) or given is None or isinstance(given, bool):
        return None
    try:
        reviewed = int(str(given).replace(",", "").replace("_", "").strip())
    except ValueError:
        return None
    drift = expected - reviewed
    return drift if abs(drift) <= drift_allowance(max_drift, reviewed) else None
