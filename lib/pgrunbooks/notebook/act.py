"""What the action runbooks share: show a plan, outline it, and end with a dry run or an apply.

Every mutating runbook has the same last steps, so they live here (the notebook layer)
rather than in cells::

    from pgrunbooks.notebook import act

    plan = actions.plan_vacuum_analyze(s, ...)     # a dry run: changes nothing
    act.show(plan, rerun={...})                    # the apply command, then the plan to review
    print(act.outline(plan))                       # a short, stable summary (nbval checks it)
    act.conclude(plan, dry_run=dry_run, confirm=confirm, fingerprint=plan_fingerprint, operator=operator)

:func:`conclude` is the only place a runbook changes anything. With ``dry_run=True`` it
records the plan's findings (what the runner's reports and exit code see) and says how
to apply; with ``dry_run=False`` it calls :func:`pgrunbooks.actions.apply`, which refuses
a wrong ``confirm``, re-checks, runs, verifies and appends the audit record, then shows
and records the result. An error (a wrong confirm, a lock timeout...) is not caught: the
cell fails, so the run fails (exit 2) with the error's message in the report.

The applying run must apply the plan that was reviewed, not just one with the same
``confirm``: ``show(plan, rerun=...)`` gives the plan every runbook parameter that shaped it
(with the pinned values: the archive's ``as_of`` from :func:`pin_cutoffs`, the pids a
terminate plan listed); a dry run then prints, first, the one command that reproduces it
(:func:`apply_command`), carrying the plan's :attr:`~pgrunbooks.actions.base.Plan.fingerprint`
as ``plan_fingerprint``; the applying run's plan must have that fingerprint or
:func:`~pgrunbooks.actions.apply` refuses (audited).
"""

from __future__ import annotations

import re

import shlex
from typing import Any

import yaml

from pgrunbooks.actions import ARCHIVE, TERMINATE_SESSIONS
from pgrunbooks.actions.auditing import refusals_recorded
from pgrunbooks.actions.base import ActionResult, Plan, apply
from pgrunbooks.errors import UsageError
from pgrunbooks.notebook.display import publish
from pgrunbooks.redact import redact


def _publish(markdown: str, text: str) -> None:
    """Display markdown in a notebook (text outside IPython), redacted."""
    publish({"text/markdown": redact(markdown), "text/plain": redact(text)})


def show(item: Plan | ActionResult, rerun: dict[str, Any] | None = None) -> None:
    """Display a plan or a result: markdown in notebooks and HTML reports, text elsewhere.

    ``rerun`` (plans only): every runbook parameter that shaped the plan, as the applying run
    must pass it (``target`` too; pinned values such as ``as_of``), without ``dry_run``,
    ``confirm``, ``plan_fingerprint``, ``operator`` or ``suppress``. It becomes
    ``plan.rerun`` (part of the fingerprint); a dry run's plan then starts with its apply
    command (:func:`apply_command`). (A bare ``plan`` as the last line of a cell would also
    add the dataclass's long ``repr`` as the text form; this shows the readable text form.)
    """
    if not isinstance(item, (Plan, ActionResult)):
        raise UsageError(f"act.show() displays a Plan or an ActionResult, not {type(item).__name__}")
    if rerun is not None:
        if not isinstance(item, Plan):
            raise UsageError("act.show(..., rerun=...) takes the parameters of a Plan, not of a result")
        item.rerun = dict(rerun)
        if getattr(item.session, "read_only", True):
            _publish(*_apply_block(item))
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


# "3,708 rows" in a warning or blocker: a count that moves as seeded rows age past a cutoff.
_ROW_COUNT = re.compile(r"(?<![\w.])\d[\d,]*(?= rows?\b)")


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
    lines += [f"  - {_ROW_COUNT.sub('N', w)}" for w in plan.warnings]
    lines.append(f"blockers: {len(plan.blockers) or 'none'}")
    lines += [f"  - {_ROW_COUNT.sub('N', b)}" for b in plan.blockers]
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
    A refusal here (a bad or future ``as_of``) on a read-write session is audited.
    """
    with refusals_recorded(ARCHIVE, session, {"pairs": pairs, "as_of": as_of}):
        return _pin_cutoffs(session, pairs, as_of)


def _pin_cutoffs(session, pairs: Any, as_of: Any) -> tuple[Any, str]:
    import psycopg

    try:
        row = session.fetch_one(
            "select date_trunc('second', m) as moment, m > statement_timestamp() as future"
            " from (select coalesce(%s::timestamptz, statement_timestamp()) as m) t",
            (None if as_of is None else str(as_of),),
        )
    except psycopg.errors.DataError:  # SQLSTATE class 22: not a timestamp
        raise UsageError(f"as_of must be a timestamp, not {as_of!r}", hint="e.g. 2025-06-30T12:00:00+00:00") from None
    moment = row["moment"]
    if row["future"]:
        raise UsageError(
            f"as_of {as_of!r} is later than now: the cutoffs would take rows that are not old yet",
            hint="pass the as_of a dry run printed, or leave it out (now)",
        )
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


#: Runbook parameters that are never part of an apply command (they do not shape the plan).
NOT_PLAN_SHAPING = ("dry_run", "confirm", "plan_fingerprint", "operator", "suppress")


class _OneLineDumper(yaml.SafeDumper):
    """Safe YAML whose quoted strings use double quotes: inside the single quotes of
    ``shlex.quote`` they need no escaping (``'as_of="2025-06-30T12:00:00+00:00"'``)."""

    def choose_scalar_style(self):
        style = super().choose_scalar_style()
        return '"' if style == "'" else style


def _cli_value(value: Any) -> str:
    """``value`` as ``-p key=value`` parses it back (YAML, one line): ``false``, ``[a, b]``, ``"0123"``."""
    if isinstance(value, tuple):
        value = list(value)
    text = yaml.dump(value, Dumper=_OneLineDumper, default_flow_style=True, sort_keys=False, width=float("inf"),
                     allow_unicode=True)
    lines = text.strip().splitlines()
    return lines[0] if len(lines) == 2 and lines[1] == "..." else " ".join(lines)  # a lone scalar ends with "..."


def apply_values(plan: Plan) -> dict[str, Any]:
    """The parameters of the run that applies ``plan``: ``plan.rerun``, then ``dry_run``,
    ``confirm`` and ``plan_fingerprint``."""
    shaping = {k: v for k, v in plan.rerun.items() if k not in NOT_PLAN_SHAPING}
    return {**shaping, "dry_run": False, "confirm": plan.confirm, "plan_fingerprint": plan.fingerprint}


def apply_command(plan: Plan) -> str:
    """The one shell command that applies exactly ``plan``: ``pgrunbooks run <runbook>`` with
    ``-p key=value`` for every value of :func:`apply_values`, each a single POSIX shell word
    (``shlex.quote``) whose value is YAML, as the runner parses it."""
    words = ["pgrunbooks", "run", plan.runbook]
    for key, value in apply_values(plan).items():
        words += ["-p", shlex.quote(f"{key}={_cli_value(value)}")]
    return " ".join(words)


_BLOCKED = "apply would refuse: resolve the blockers listed in the plan, then run the dry run again."


def _apply_block(plan: Plan) -> tuple[str, str]:
    """(markdown, text): the apply command on its own, in a code block, or why there is none."""
    if plan.blockers:
        why = "A" + _BLOCKED[1:]
    elif plan.nothing_to_do:
        why = "Nothing to apply."
    else:
        command = apply_command(plan)
        lead = (f"To apply this plan (fingerprint {plan.fingerprint}, confirm {plan.confirm_text()}: "
                f"{plan.confirm_hint}), review it below, then run:")
        return f"**{lead}**\n\n```bash\n{command}\n```", f"{lead}\n\n{command}\n"
    return f"**{why}**", why


def dry_run_note(plan: Plan) -> tuple[str, str]:
    """(markdown, text) telling the reader that nothing changed and how to apply the plan."""
    if plan.blockers:
        todo = _BLOCKED
    elif plan.nothing_to_do:
        todo = "there is nothing to apply."
    elif plan.rerun:
        todo = "to apply it, run the command shown above the plan, after reading the plan."
    else:
        todo = (f"to apply it in Python, read the plan, then call apply(plan, confirm={plan.confirm_text()}) "
                f"({plan.confirm_hint}).")
    markdown = f"**Dry run: nothing was changed.** The plan above is this run's finding; {todo}"
    return markdown, markdown.replace("**", "")


def conclude(
    plan: Plan,
    *,
    dry_run: bool,
    confirm: Any = None,
    fingerprint: str | None = None,
    operator: str | None = None,
    progress: bool = True,
    audit_log: str | None = None,
) -> Plan | ActionResult:
    """The last step of an action runbook: record the dry run, or apply and record the result.

    ``dry_run=True``: records ``plan.findings()`` (via ``rb.record``), says that nothing
    changed and where the apply command is, returns the plan. ``dry_run=False``:
    ``apply(plan, confirm=..., fingerprint=...)`` (refuses a wrong confirm, or a plan whose
    fingerprint is not the reviewed one's: for a plan shown with ``rerun`` a fingerprint is
    required; re-checks, runs in bounded steps, verifies, appends the audit record), shows
    the result, records ``result.findings()`` and returns it. Errors propagate: the cell
    fails and the report shows the message.
    """
    from pgrunbooks import notebook as rb

    if not isinstance(dry_run, bool):
        raise UsageError(f"dry_run must be True or False, not {dry_run!r}")
    if dry_run:
        _publish(*dry_run_note(plan))
        rb.record(plan.findings())
        return plan
    # A runbook's plan (shown with its rerun parameters) is bound to the reviewed one: no
    # fingerprint given is a refusal (""), not a pass.
    given = None if fingerprint is None and not plan.rerun else str(fingerprint if fingerprint is not None else "")
    result = apply(plan, confirm_value(plan, confirm), operator=operator, progress=progress, audit_log=audit_log,
                   fingerprint=given)
    show(result)
    rb.record(result.findings())
    return result
