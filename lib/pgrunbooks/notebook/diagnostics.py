"""A diagnostic runbook's checks: it declares them, :func:`diagnose` runs them.

The checks package knows no runbook. Each diagnostic runbook names the checks it runs in
its ``parameters`` cell, so the list is read where it is used and ``-p`` narrows a run::

    checks = ["dead_tuples", "vacuum_age"]  # the checks this runbook runs; ids from `pgrunbooks check --list`

    results = rb.diagnose(s, checks, thresholds=thresholds, suppress=suppress)

The registry is imported when a runbook first runs its checks, not when the notebook layer
is imported (onboarding and action runbooks need none of it).
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

from pgrunbooks.errors import ParameterError, UsageError

#: The name of the parameter in which a diagnostic runbook declares its checks.
CHECKS_PARAMETER = "checks"
_HINT = 'a list of check ids, for example checks = ["dead_tuples"]; list them with `pgrunbooks check --list`'


def check_ids(value: Any) -> list[str]:
    """``value`` (a runbook's ``checks`` parameter) as check ids.

    Raises :class:`~pgrunbooks.errors.ParameterError` (a usage error, exit 3) unless it is a
    non-empty list of registered check ids: an empty list would check nothing and report a
    clean database.
    """
    from pgrunbooks.checks import select

    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise ParameterError(f"parameter {CHECKS_PARAMETER!r} must be a list of check ids, got {value!r}", hint=_HINT)
    if not value:
        raise ParameterError(f"parameter {CHECKS_PARAMETER!r} is empty: the runbook would check nothing", hint=_HINT)
    try:
        select(ids=value)
    except UsageError as exc:
        raise ParameterError(f"parameter {CHECKS_PARAMETER!r}: {exc.message}", hint=exc.hint) from None
    return list(value)


def diagnose(
    session,
    checks: Sequence[str],
    *,
    thresholds: Mapping[str, Mapping[str, Any]] | None = None,
    suppress: Iterable[str] | None = None,
    exposed_schemas: Sequence[str] | None = None,
):
    """Run the runbook's declared ``checks`` on ``session`` and return their
    :class:`~pgrunbooks.checks.Results` (findings and measurement rows, for tables and charts).

    ``exposed_schemas`` (the schemas the Data API serves) replaces the database's
    ``pgrst.db_schemas``; ``None`` reads it. Bad ids, thresholds or schema lists raise a usage
    error before any query. Report the findings with ``rb.record(results.findings)``.
    """
    from pgrunbooks.checks import run_results

    return run_results(session, ids=check_ids(checks), thresholds=thresholds, suppress=suppress,
                       exposed_schemas=exposed_schemas)
