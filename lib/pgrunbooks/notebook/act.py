"""What the action runbooks share: show a plan, outline it, and end with a dry run or an apply.

Every mutating runbook has the same last steps, so they live here (the notebook layer)
rather than in cells::

    from pgrunbooks.notebook import act

    plan = actions.plan_vacuum_analyze(s, ...)     # a dry run: changes nothing
    act.show(plan)                                 # the plan, for a human to review
    print(act.outline(plan))                       # a short, stable summary (nbval checks it)
    act.conclude(plan, dry_run=dry_run, confirm=confirm, operator=operator)

:func:`conclude` is the only place a runbook changes anything. With ``dry_run=True`` it
records the plan's findings (what the runner's reports and exit code see) and says how
to apply; with ``dry_run=False`` it calls :func:`pgrunbooks.actions.apply`, which refuses
a wrong ``confirm``, re-checks, runs, verifies and appends the audit record, then shows
and records the result. An error (a wrong confirm, a lock timeout...) is not caught: the
cell fails, so the run fails (exit 2) with the error's message in the report.

Two more helpers pin a plan so that the applying run plans the same thing as the dry run
it follows: :func:`pin_cutoffs` (the archive's cutoffs, from ``as_of``) and the ``rerun``
argument of :func:`conclude`, which puts those values in the printed apply command.
"""

from __future__ import annotations

from typing import Any

from pgrunbooks.actions import TERMINATE_SESSIONS
from pgrunbooks.actions.base import ActionResult, Plan, apply
from pgrunbooks.errors import UsageError
from pgrunbooks.notebook.display import publish
from pgrunbooks.redact import redact


def _publish(markdown: str, text: str) -> None:
    """Display markdown in a notebook (text outside IPython), redacted."""
    publish({"text/markdown": redact(markdown), "text/plain": redact(text)})


def show(item: Plan | ActionResult) -> None:
    """Display a plan or a result: markdown in notebooks and HTML reports, text elsewhere.

    (A bare ``plan`` as the last line of a cell would also add the dataclass's long
    ``repr`` as the text form; this shows the readable text form instead.)
    """
    if not isinstance(item, (Plan, ActionResult)):
        raise UsageError(f"act.show() displays a Plan or an ActionResult, not {type(item).__name__}")
    _publish(item._repr_markdown_(), str(item))


def show_targets(plan: Plan) -> None:
    """One block per session of a ``plan_terminate`` plan, with its full query text.

    The plan's table cuts long queries short; before ending someone's session you want
    to read the whole statement. Query texts are already masked for passwords by the plan.
    """
    if plan.action is not TERMINATE_SESSIONS:
        raise UsageError(f"show_targets() lists the sessions of a terminate plan, not of {plan.action.name!r}")
    if not plan.objects:
        _publish("*No session matches the filters.*", "No session matches the filters.")
        return
    md: list[str] = []
    text: list[str] = []
    for o in plan.objects:
        head = (
            f"pid {o['pid']} · user {o.get('user') or '?'} · application {o.get('application') or '-'}"
            f" · {o.get('state') or '?'} for {o.get('duration_s')} s"
            + (f" · waiting on {o['wait']}" if o.get("wait") else "")
        )
        query = (o.get("query") or "").replace("```", "` ` `")
        md += [f"**{head}** → *{o.get('action')}*", "", "```sql", query or "-- (no query text)", "```", ""]
        text += [f"{head} -> {o.get('action')}", "    " + (query.replace("\n", "\n    ") or "(no query text)"), ""]
    _publish("\n".join(md), "\n".join(text))


def outline(plan: Plan) -> str:
    """A short summary of ``plan`` that does not drift: counts, what is done to what, warnings, blockers.

    Leaves out row counts, sizes, durations and times, so on the deterministic sandbox the
    same plan prints the same outline every run (the runbooks mark that cell for nbval).
    """
    if not isinstance(plan, Plan):
        raise UsageError(f"outline() summarises a Plan, not {type(plan).__name__}")
    # The action's columns name what is done to what: stable on the seeded sandbox (sizes,
    # row counts, durations and timestamps are left out: they drift).
    columns = plan.action.outline_columns
    lines = [f"{plan.action.name}: {len(plan.objects)} object(s) in the plan"]
    rows = [[str(o.get(c) if o.get(c) is not None else "") for c in columns] for o in plan.objects]
    widths = [max([len(r[i]) for r in rows] or [0]) for i in range(len(columns))]
    lines += ["  " + "  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows]
    lines.append(f"warnings: {len(plan.warnings) or 'none'}")
    lines += [f"  - {w}" for w in plan.warnings]
    lines.append(f"blockers: {len(plan.blockers) or 'none'}")
    lines += [f"  - {b}" for b in plan.blockers]
    lines.append(f"apply needs confirm = {plan.confirm_hint}")
    return redact("\n".join(lines))


def confirm_value(plan: Plan, confirm: Any) -> Any:
    """``confirm`` as :func:`~pgrunbooks.actions.apply` compares it with the plan.

    One value is a one-element list when the plan asks for a list of pids
    (``-p confirm=12345`` arrives as an int); anything else is passed as given.
    """
    if isinstance(plan.confirm, (list, tuple)) and isinstance(confirm, int) and not isinstance(confirm, bool):
        return [confirm]
    return confirm


def pin_cutoffs(session, pairs: Any, as_of: Any = None) -> tuple[Any, str]:
    """Fix the cutoff of every ``older_than`` pair from one moment; returns (pairs, that moment).

    ``older_than`` counts back from *now*, so a plan made an hour after the dry run
    would move a few more rows and ask for another ``confirm``. Counting back from
    ``as_of`` (a timestamp; default: now, to the second) and passing the dry run's
    ``as_of`` when applying gives the same cutoffs, hence the same rows and the same
    ``confirm``. Pairs with an explicit ``cutoff`` keep it; anything that is not a list
    of pairs is returned as given, for :func:`~pgrunbooks.actions.plan_archive` to judge.
    """
    import psycopg

    try:
        moment = session.scalar(
            "select date_trunc('second', coalesce(%s::timestamptz, statement_timestamp()))",
            (None if as_of is None else str(as_of),),
        )
    except psycopg.errors.DataError:  # SQLSTATE class 22: not a timestamp
        raise UsageError(f"as_of must be a timestamp, not {as_of!r}", hint="e.g. 2025-06-30T12:00:00+00:00") from None
    if isinstance(pairs, dict):
        pairs = [pairs]
    if not isinstance(pairs, (list, tuple)):
        return pairs, moment.isoformat()
    pinned = []
    for item in pairs:
        if isinstance(item, dict) and item.get("cutoff") is None and item.get("older_than") is not None:
            try:
                cutoff = session.scalar("select %s::timestamptz - %s::interval", (moment, str(item["older_than"])))
            except psycopg.errors.DataError:  # SQLSTATE class 22: not an interval
                raise UsageError(
                    f"older_than of {item.get('source')!r} is not an interval: {item['older_than']!r}",
                    hint="a PostgreSQL interval: '1 year', '6 months', '90 days'",
                ) from None
            item = {**item, "cutoff": cutoff}
        pinned.append(item)
    return pinned, moment.isoformat()


def _cli(name: str, value: Any) -> str:
    """``-p name=value`` as a shell word that the runner parses back to ``value``."""
    if isinstance(value, (list, tuple)):
        text = f"{name}=[" + ", ".join(str(v) for v in value) + "]"
    else:
        text = f"{name}={value}"
    return f"-p '{text}'" if any(ch in text for ch in " []{}*?$;&|<>'\"") else f"-p {text}"


def dry_run_note(plan: Plan, rerun: dict[str, Any] | None = None) -> tuple[str, str]:
    """(markdown, text) telling the reader that nothing changed and how to apply the plan.

    ``rerun``: other parameters that pin the plan for the applying run (the archive's
    ``as_of``, the pids a terminate plan listed), shown with ``dry_run`` and ``confirm``.
    """
    if plan.blockers:
        todo = "apply would refuse: resolve the blockers listed in the plan, then run the dry run again."
    elif plan.nothing_to_do:
        todo = "there is nothing to apply."
    else:
        values = {"dry_run": False, "confirm": plan.confirm, **(rerun or {})}
        in_notebook = ", ".join(f"`{k} = {v!r}`" for k, v in values.items())
        cli = " ".join(_cli(k, "false" if v is False else v) for k, v in values.items())
        todo = (
            f"to apply it, read the plan, then run again with {in_notebook} (confirm is {plan.confirm_hint}): "
            f"`pgrunbooks run {plan.runbook} {cli}`."
        )
    markdown = f"**Dry run: nothing was changed.** The plan above is this run's finding; {todo}"
    return markdown, markdown.replace("**", "").replace("`", "")


def conclude(
    plan: Plan,
    *,
    dry_run: bool,
    confirm: Any = None,
    operator: str | None = None,
    progress: bool = True,
    audit_log: str | None = None,
    rerun: dict[str, Any] | None = None,
) -> Plan | ActionResult:
    """The last step of an action runbook: record the dry run, or apply and record the result.

    ``dry_run=True``: records ``plan.findings()`` (via ``rb.record``), shows how to apply,
    changes nothing, returns the plan (``rerun``: see :func:`dry_run_note`). ``dry_run=False``: ``apply(plan, confirm=...)``
    (refuses a wrong confirm, re-checks, runs in bounded steps, verifies, appends the
    audit record), shows the result, records ``result.findings()`` and returns it.
    Errors propagate: the cell fails and the report shows the message.
    """
    from pgrunbooks import notebook as rb

    if not isinstance(dry_run, bool):
        raise UsageError(f"dry_run must be True or False, not {dry_run!r}")
    if dry_run:
        _publish(*dry_run_note(plan, rerun))
        rb.record(plan.findings())
        return plan
    result = apply(plan, confirm_value(plan, confirm), operator=operator, progress=progress, audit_log=audit_log)
    show(result)
    rb.record(result.findings())
    return result
