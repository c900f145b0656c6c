"""The objects a maintenance action takes from the diagnostics: the checks registry's findings.

VACUUM/ANALYZE and REINDEX plan from the same checks a DBA reads in the weekly reports
(:func:`pgrunbooks.checks.run_checks`), with the same thresholds. A check that ends in an
error would make the plan silently incomplete, so planning stops with
:class:`~pgrunbooks.errors.CheckFailedError`; a check that is skipped (a missing privilege
or extension) and a flagged object that no longer resolves are plan warnings.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pgrunbooks.actions import catalog
from pgrunbooks.actions.catalog import Relation
from pgrunbooks.errors import CheckFailedError, UsageError
from pgrunbooks.findings import Severity
from pgrunbooks.names import quote_ident

FLAGGING = (Severity.WARNING, Severity.CRITICAL)


@dataclass
class Flagged:
    """What the checks flagged: each relation with the ids of the checks that flagged it, and warnings."""

    reasons: dict[int, set[str]] = field(default_factory=dict)
    relations: dict[int, Relation] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def existing_schemas(session, schemas) -> list[str]:
    """``schemas`` as a list, every one of them existing: else :class:`UsageError` naming those that do not.

    A schema that matches nothing would make the plan say "Nothing to do" about a typo.
    """
    names = [schemas] if isinstance(schemas, str) else list(schemas or [])
    if not names or not all(isinstance(n, str) and n for n in names):
        raise UsageError(f"schemas must be a non-empty list of schema names, not {schemas!r}")
    missing = session.scalar(
        "select coalesce(array_agg(w.name order by w.ord), '{}') from unnest(%s::text[]) with ordinality w(name, ord)"
        " where not exists (select from pg_catalog.pg_namespace n where n.nspname = w.name)",
        (names,),
    )
    if missing:
        raise UsageError(
            f"no such schema: {', '.join(map(quote_ident, missing))} (schemas={names!r})",
            hint="name existing schemas (select nspname from pg_namespace), e.g. schemas=['public']",
        )
    return names


def flagged_relations(session, check_ids: list[str], *, kinds: tuple[str, ...], what: str, schemas: list[str]) -> Flagged:
    """Run ``check_ids`` and resolve the objects of their warning/critical findings within ``schemas``."""
    from pgrunbooks.checks import run_checks

    findings = run_checks(session, ids=check_ids)
    errors = [f for f in findings if f.severity == Severity.ERROR]
    if errors:
        raise CheckFailedError(
            "cannot plan from the diagnostics: "
            + "; ".join(f"check {f.check_id} failed ({f.detail or f.title})" for f in errors),
            hint="fix what the check reports (or plan from an explicit list with from_checks=False), then re-plan",
        )
    out = Flagged()
    for f in findings:
        if f.severity == Severity.SKIPPED:
            out.warnings.append(f"check {f.check_id} was skipped ({f.detail or f.title}): the {what}s it flags are not in this plan")
        if f.severity not in FLAGGING or not f.object:
            continue
        try:
            rel = catalog.lookup(session, f.object, what=what)
            if rel.schema not in schemas:
                continue
            catalog.require_kind(rel, kinds, what)
        except UsageError as exc:  # dropped since the check ran, or not a kind this action maintains
            out.warnings.append(f"check {f.check_id} flagged {f.object}, left out: {exc.message}")
            continue
        out.relations[rel.oid] = rel
        out.reasons.setdefault(rel.oid, set()).add(f.check_id)
    return out
