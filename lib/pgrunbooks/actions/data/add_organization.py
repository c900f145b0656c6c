"""Add an organization and make its creating admin the owner, in one bounded transaction.

The guide's ``INSERT INTO organizations … RETURNING id`` leaves out the slug (NOT NULL,
unique), names the admin only in ``created_by`` (so nobody can open the new organization:
membership goes through ``org_users``) and creates a second organization when re-run. Here:

* the values are checked before connecting (the runbook declares the slug pattern and the
  allowed statuses) and again in :meth:`AddOrganization.plan` for library callers;
* the plan reads the catalog: the slug must be free, the admin (a profile, by email or id)
  must exist. A slug already taken *by an organization of the same name* means the work was
  done before: the plan says so and there is nothing to apply (idempotent by slug); taken by
  another organization, it blocks;
* apply inserts the organization and the owner membership in one transaction under
  ``SET LOCAL lock_timeout/statement_timeout``, guarded by ``ON CONFLICT (slug) DO NOTHING``
  (a concurrent creator wins, this run refuses), verifies both rows and prints the new id.
  The undo (in the result and the audit record) deletes that organization by id.
"""

from __future__ import annotations

from typing import Any

from pgrunbooks.actions.base import Action, ActionResult, Context, Plan, Verified
from pgrunbooks.actions.data.common import SLUG_MAX, SLUG_PATTERN, Org, resolve_profile, valid_slug
from pgrunbooks.errors import PreconditionError, UsageError

#: ``organizations.subscription_status`` (its CHECK constraint in the seeded schema).
STATUSES = ("trialing", "active", "past_due", "canceled")
#: the role the creating admin gets in ``org_users``.
OWNER = "owner"

INSERT_ORG = """
insert into public.organizations as o (name, slug, subscription_status, created_by)
values (%(name)s, %(slug)s, %(status)s, %(admin)s)
on conflict (slug) do nothing
returning o.id
"""
INSERT_OWNER = """
insert into public.org_users as ou (org_id, user_id, role)
values (%(org)s, %(admin)s, %(role)s)
returning ou.id
"""
LOCK_ADMIN = "select p.id from public.profiles p where p.id = %(admin)s for key share"
READ_BACK = """
select o.id, o.slug, o.name, o.subscription_status,
       (select pg_catalog.count(*) from public.org_users ou
         where ou.org_id = o.id and ou.user_id = %(admin)s and ou.role = %(role)s) as owners
  from public.organizations o
 where o.id = %(org)s
"""
OWNER_OF = """
select ou.role from public.org_users ou where ou.org_id = %(org)s and ou.user_id = %(admin)s
"""
BY_SLUG = "select o.id, o.slug, o.name from public.organizations o where o.slug = %(slug)s"
STATUS_OF = "select o.subscription_status from public.organizations o where o.id = %(org)s"


def check_values(name: Any, slug: Any, subscription_status: Any) -> tuple[str, str, str]:
    """The cleaned (name, slug, status); :class:`UsageError` naming the first bad one."""
    if not isinstance(name, str) or not name.strip():
        raise UsageError("name must be a non-empty string", hint="e.g. name='Acme Dental'")
    if not isinstance(slug, str) or not valid_slug(slug):
        raise UsageError(
            f"slug {slug!r} is not a slug: lower-case letters and digits in words joined by single hyphens, "
            f"at most {SLUG_MAX} characters ({SLUG_PATTERN})",
            hint="e.g. slug='acme-dental'",
        )
    if subscription_status not in STATUSES:
        raise UsageError(f"subscription_status must be one of {', '.join(STATUSES)}, not {subscription_status!r}")
    return name.strip(), slug, subscription_status


class AddOrganization(Action):
    """Create one organization (name, slug, subscription status) and its owner membership."""

    name = "add_organization"
    title = "Add an organization"
    confirm_hint = "the new organization's slug"
    outline_columns = ("operation", "table", "key")

    def plan(
        self,
        session,
        *,
        name: str,
        slug: str,
        admin: str,
        subscription_status: str = "trialing",
        statement_timeout: str = "10s",
        lock_timeout: str = "2s",
    ) -> Plan:
        """Dry run: check the values, that the slug is free and the admin exists. Changes nothing.

        ``admin`` is a profile's email or id; :class:`UsageError` (exit 3) when no profile
        matches or a value is malformed. Confirm with the slug.
        """
        name, slug, status = check_values(name, slug, subscription_status)
        profile = resolve_profile(session, admin)
        row = session.fetch_one(BY_SLUG, {"slug": slug})
        existing = Org(row["id"], row["slug"], row["name"]) if row else None
        parameters = {"name": name, "slug": slug, "admin": str(admin), "subscription_status": status,
                      "statement_timeout": statement_timeout, "lock_timeout": lock_timeout}
        state = {"name": name, "slug": slug, "status": status, "admin": profile.id, "admin_email": profile.email}
        common = dict(confirm=slug, parameters=parameters, state=state, notes=[
            "one transaction: the organization and the owner membership commit together or not at all",
            f"bounded by statement_timeout={statement_timeout} and lock_timeout={lock_timeout} (SET LOCAL)",
        ])
        if existing is not None:
            return self._existing(session, existing, profile, status, common)
        return self.new_plan(
            session,
            summary=(f"Create organization {slug!r} ({name}, {status}) and make {profile.email} its owner. "
                     "The new id is printed when applied."),
            statements=[INSERT_ORG.strip() + ";", INSERT_OWNER.strip() + ";"],
            objects=[
                {"operation": "insert", "table": "public.organizations", "key": slug, "detail": f"{name}, {status}"},
                {"operation": "insert", "table": "public.org_users", "key": f"{slug} / {profile.email}",
                 "detail": f"role {OWNER}"},
            ],
            rows=2,
            undo="-- the result fills in the new id:\ndelete from public.organizations where id = '<new id>';"
                 "  -- org_users rows go with it (ON DELETE CASCADE)",
            **common,
        )

    def _existing(self, session, existing, profile, status: str, common: dict[str, Any]) -> Plan:
        """The slug is taken: the same organization (nothing to do, idempotent) or another one (blocked)."""
        slug, name = common["state"]["slug"], common["state"]["name"]
        warnings, blockers = [], []
        if existing.name != name:
            blockers.append(f"slug {slug!r} is taken by another organization, {existing.name!r} (id {existing.id}): "
                            "choose another slug")
        else:
            args = {"org": existing.id, "admin": profile.id}
            role = next(iter(session.fetch(OWNER_OF, args)), {}).get("role")
            if role != OWNER:
                warnings.append(f"{profile.email} is {'a ' + role if role else 'not a member'} of {slug!r}, not its "
                                "owner: this runbook does not change an existing organization")
            current = session.scalar(STATUS_OF, args)
            if current != status:
                warnings.append(f"{slug!r} is {current}, not {status}: not changed by this runbook")
        summary = (f"Organization {slug!r} already exists (id {existing.id}): nothing to do."
                   if not blockers else f"Slug {slug!r} is taken: nothing will be created.")
        common["state"]["existing"] = existing.id
        return self.new_plan(session, summary=summary, objects=[], rows=0, warnings=warnings, blockers=blockers,
                             undo="-- none: nothing is changed", **common)

    def execute(self, plan: Plan, ctx: Context) -> ActionResult:
        st = plan.state
        if plan.nothing_to_do:
            with ctx.step("re-check"):
                org = plan.session.fetch_one(BY_SLUG, {"slug": st["slug"]})
            return self.result(ctx, outcome="nothing_to_do", summary=f"Organization {st['slug']!r} already exists.",
                               verified=[Verified("organization exists", org is not None and org["id"] == st["existing"],
                                                  f"id {org['id'] if org else None}")])
        params = {"name": st["name"], "slug": st["slug"], "status": st["status"], "admin": st["admin"], "role": OWNER}
        timeouts = {k: plan.parameters[k] for k in ("statement_timeout", "lock_timeout")}
        with ctx.step("insert organization and owner"), plan.session.transaction(**timeouts) as cur:
            cur.execute(LOCK_ADMIN, params)
            if cur.fetchone() is None:
                raise PreconditionError(f"the admin profile {st['admin_email']} was deleted since the plan; nothing was changed")
            cur.execute(INSERT_ORG, params)
            row = cur.fetchone()
            if row is None:
                raise PreconditionError(f"organization {st['slug']!r} was created by someone else since the plan; "
                                        "nothing was changed", hint="make a new plan: it will say it already exists")
            params["org"] = row["id"]
            cur.execute(INSERT_OWNER, params)
            membership = cur.fetchone()["id"]
            cur.execute(READ_BACK, params)
            back = cur.fetchone()
            verified = [
                Verified("organization created", back["slug"] == st["slug"] and back["name"] == st["name"],
                         f"{back['slug']} ({back['subscription_status']}) id {back['id']}"),
                Verified("admin is the owner", back["owners"] == 1, f"{st['admin_email']} owner of {back['slug']}"),
            ]
            # A failed verification raises here, inside the transaction: nothing is committed.
            result = self.result(
                ctx, outcome="applied",
                summary=f"Created organization {st['slug']!r} with id {params['org']}; {st['admin_email']} is its owner.",
                verified=verified,
                objects=[{"table": "public.organizations", "id": str(params["org"]), "key": st["slug"]},
                         {"table": "public.org_users", "id": str(membership), "key": f"{st['slug']} / {st['admin_email']}"}],
                undo=(f"delete from public.organizations where id = '{params['org']}';"
                      "  -- its org_users rows (and anything added to it since) go with it: ON DELETE CASCADE"),
            )
        ctx.progress["committed"] = f"organization {st['slug']} id {params['org']}"
        return result


ADD_ORGANIZATION = AddOrganization()
plan_add_organization = ADD_ORGANIZATION.plan
