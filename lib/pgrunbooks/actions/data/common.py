"""Look-ups every data migration shares: an organization by slug or id, a profile by email or id.

Each takes the value a DBA typed (a runbook parameter) and returns a small frozen record, or
raises :class:`~pgrunbooks.errors.UsageError` (exit 3) naming what matched nothing, so a typo
stops the runbook before any change. ``session`` is a :class:`pgrunbooks.db.Session` or an
open cursor (inside the action's own transaction, to read what it is about to change).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from pgrunbooks.errors import UsageError

#: a slug as the application makes them (the seed: lower-case words joined by single hyphens).
SLUG_PATTERN = r"^[a-z0-9]+(-[a-z0-9]+)*$"
SLUG_MAX = 63
#: deliberately loose: one @, no blanks, a dot in the domain. The same rule runs in SQL (bulk import).
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s.]+$"


@dataclass(frozen=True)
class Org:
    """One row of ``public.organizations``: its id (a :class:`uuid.UUID`), slug and name."""

    id: uuid.UUID
    slug: str
    name: str


@dataclass(frozen=True)
class Profile:
    """One row of ``public.profiles``: its id (the ``auth.users`` id) and email."""

    id: uuid.UUID
    email: str


def as_uuid(value: Any) -> uuid.UUID | None:
    """``value`` as a UUID when it is one (a UUID or its text), else ``None``."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value).strip())
    except (ValueError, AttributeError):
        return None


def _rows(session, query: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    if hasattr(session, "fetch"):  # a Session: its own short read transaction
        return session.fetch(query, params)
    session.execute(query, params)  # a cursor (dict rows) inside the caller's transaction
    return list(session.fetchall())


ORG_SQL = """
select o.id, o.slug, o.name
  from public.organizations o
 where o.slug = %(text)s or o.id = %(id)s
 order by (o.id = %(id)s) desc nulls last, o.slug
"""


def find_organization(session, value: Any) -> Org | None:
    """The organization whose id or slug is ``value``, or ``None``; an id wins over a slug."""
    text = str(value).strip() if value is not None else ""
    if not text:
        return None
    rows = _rows(session, ORG_SQL, {"text": text, "id": as_uuid(text)})
    return Org(rows[0]["id"], rows[0]["slug"], rows[0]["name"]) if rows else None


def resolve_organization(session, value: Any) -> Org:
    """The organization whose slug or id is ``value``; :class:`UsageError` when none is."""
    org = find_organization(session, value)
    if org is None:
        raise UsageError(
            f"no organization has the slug or id {str(value)!r}",
            hint="list them with: select slug, id from public.organizations order by slug",
        )
    return org


PROFILE_SQL = """
select p.id, p.email
  from public.profiles p
 where lower(p.email) = lower(%(text)s) or p.id = %(id)s
 order by (p.id = %(id)s) desc nulls last, p.id
"""


def find_profile(session, value: Any) -> Profile | None:
    """The profile whose id or email (case-insensitive) is ``value``, or ``None``."""
    text = str(value).strip() if value is not None else ""
    if not text:
        return None
    rows = _rows(session, PROFILE_SQL, {"text": text, "id": as_uuid(text)})
    return Profile(rows[0]["id"], rows[0]["email"]) if rows else None


def resolve_profile(session, value: Any) -> Profile:
    """The profile whose email or id is ``value``; :class:`UsageError` when none is."""
    profile = find_profile(session, value)
    if profile is None:
        raise UsageError(
            f"no profile has the email or id {str(value)!r}",
            hint="the user must sign up first (a row in auth.users and public.profiles)",
        )
    return profile


def valid_slug(value: str) -> bool:
    """True when ``value`` is a well-formed slug (:data:`SLUG_PATTERN`, at most :data:`SLUG_MAX` chars)."""
    return bool(value) and len(value) <= SLUG_MAX and re.fullmatch(SLUG_PATTERN, value) is not None
