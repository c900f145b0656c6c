"""Bulk-import organization memberships from a CSV (email, organization, role), validated in SQL.

The guide's ``\\copy org_users FROM 'users.csv'`` needs the caller to know every uuid, and
one bad line aborts the lot or, worse, a duplicate lands. Here the file is checked
(:mod:`~pgrunbooks.actions.data.bulk_import_csv`), ``COPY``-ed into a temporary staging table
and every row classified in one SQL statement: a well-formed email, an organization that
exists (slug or id), a role a bulk import may grant (admin, member, viewer), no duplicate
inside the file, not already a member, a user who exists.

**Users missing from ``profiles``/``auth.users``** are rejected ("no such user") unless
``create_missing_users=True``: then each gets an ``auth.users`` row as Supabase Auth's invite
would leave it (the email lower-cased, ``role = 'authenticated'``, email provider metadata, no
password: they sign in through a reset or magic link) and a ``profiles`` row (``global_role =
'user'``), as the seed creates them. An ``auth.users`` row without a profile gets the profile.

The plan lists per organization what happens to how many rows, and the rejects with their
line numbers and reasons (warnings). ``confirm`` is the number of memberships to insert.
Apply re-stages the same file inside one transaction (``SET LOCAL`` timeouts), refuses if
its content or the count changed, inserts the users, then the memberships (a membership
committed meanwhile is a unique violation: the transaction rolls back and the run
refuses), verifies, commits. The undo (in the result and the audit record) deletes exactly the
inserted memberships, profiles and users by id. Re-running the same file changes nothing:
every row is then ``member``.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import psycopg.errors as pgerr
from psycopg import sql

from pgrunbooks.actions.base import Action, ActionResult, Context, Plan, Verified
from pgrunbooks.actions.data import bulk_import_csv as stage_sql
from pgrunbooks.actions.data.bulk_import_csv import INSERTS, read_csv, scratch, stage
from pgrunbooks.errors import PreconditionError, UsageError

#: rejects listed per reason in a warning; the rest are counted (all are in plan.state["rejects"]).
LINES_SHOWN = 20

INSERT_USERS = """
with ins as (
  insert into auth.users (email, created_at, updated_at, raw_app_meta_data, raw_user_meta_data, role)
  select distinct c.email_key, pg_catalog.now(), pg_catalog.now(),
         '{"provider": "email", "providers": ["email"]}'::jsonb, '{}'::jsonb, 'authenticated'
    from pg_temp.pgrb_import_checked c
   where c.outcome = 'insert, new user'
  returning id, email
)
update pg_temp.pgrb_import_checked c set auth_id = ins.id from ins where c.email_key = ins.email
returning ins.id
"""
INSERT_PROFILES = """
with ins as (
  insert into public.profiles (id, email, global_role)
  select distinct c.auth_id, c.email_key, 'user'
    from pg_temp.pgrb_import_checked c
   where c.outcome in ('insert, new user', 'insert, new profile')
  returning id
)
select pg_catalog.array_agg(ins.id order by ins.id) as ids from ins
"""
INSERT_MEMBERS = """
with ins as (
  insert into public.org_users (org_id, user_id, role)
  select c.org_id, coalesce(c.user_id, c.auth_id), c.role
    from pg_temp.pgrb_import_checked c
   where c.outcome = any(%(inserts)s::text[])
  returning id
)
select pg_catalog.count(*) as n, pg_catalog.array_agg(ins.id order by ins.id)::text as ids from ins
"""
VERIFY = """
select pg_catalog.count(*) filter (where m.id is not null) as landed, pg_catalog.count(*) as expected
  from pg_temp.pgrb_import_checked c
  left join public.org_users m
    on m.org_id = c.org_id and m.user_id = coalesce(c.user_id, c.auth_id) and m.role = c.role
 where c.outcome = any(%(inserts)s::text[])
"""


def _array(ids: list | str | None) -> str | None:
    """``ids`` as one array literal ``{a,b}`` (the server's text form is passed through as it is)."""
    if isinstance(ids, str) or not ids:
        return ids or None
    return "{" + ",".join(map(str, ids)) + "}"


def _undo(members: list | str | None, profiles: list, users: list) -> sql.Composed:
    """Delete exactly what the import inserted, dependents first. ``members``: the ids, or their array's text."""
    parts = []
    for table, ids in (("org_users", members), ("profiles", profiles), ("users", users)):
        literal = _array(ids)
        if literal:
            schema = "auth" if table == "users" else "public"
            # One array literal (the server's own text of the ids for the memberships), not a list of
            # 100,000 literals: cheap to build and to audit.
            parts.append(sql.SQL("delete from {} where id = any({}::uuid[]);").format(
                sql.Identifier(schema, table), sql.Literal(literal)))
    return sql.SQL("\n").join(parts) if parts else sql.SQL("-- nothing was inserted")


class BulkImportUsers(Action):
    """Add the memberships of a CSV (email, organization, role) in one transaction."""

    name = "bulk_import_users"
    title = "Bulk-import users into organizations"
    confirm_hint = "the number of memberships to insert"
    outline_columns = ("organization", "outcome", "file")

    def plan(
        self,
        session,
        *,
        csv: Any,
        create_missing_users: bool = False,
        statement_timeout: str = "60s",
        lock_timeout: str = "5s",
    ) -> Plan:
        """Dry run: check the file, stage and classify its rows, count what would be inserted.

        Nothing persists: the staging happens in a transaction that is rolled back. A bad
        file is a :class:`UsageError` (exit 3) naming the line. Confirm with the number of
        memberships to insert.
        """
        if not isinstance(create_missing_users, bool):
            raise UsageError(f"create_missing_users must be True or False, not {create_missing_users!r}")
        timeouts = {"statement_timeout": statement_timeout, "lock_timeout": lock_timeout}
        if csv is None:
            return self._no_file(session, create_missing_users, timeouts)
        file = read_csv(csv)
        with scratch(session, timeouts) as cur:
            stage(cur, file, create_missing_users)
            cur.execute(stage_sql.SUMMARY)
            groups = cur.fetchall()
            cur.execute(stage_sql.REJECTS)
            rejects = cur.fetchall()
            cur.execute(stage_sql.NEW_USERS)
            new = cur.fetchone()
        digest = file.sha256[:12]
        objects = [dict(g, file=digest) for g in groups]
        inserts = sum(g["rows"] for g in groups if g["outcome"] in INSERTS)
        members = sum(g["rows"] for g in groups if g["outcome"] == "member")
        parameters = {"csv": file.path, "create_missing_users": create_missing_users, **timeouts}
        return self.new_plan(
            session,
            summary=self._summary(file, inserts, members, len(rejects), new),
            confirm=inserts,
            statements=[s.strip() + ";" for s in (stage_sql.STAGE, stage_sql.COPY_TEXT)]
            + ["-- classify every row (see bulk_import_csv.CLASSIFY), then:"]
            + [s.strip() + ";" for s in ((INSERT_USERS, INSERT_PROFILES) if new["users"] or new["profiles"] else ())]
            + [INSERT_MEMBERS.strip() + ";"],
            objects=objects,
            rows=inserts,
            undo="-- the result fills in the ids it inserted:\ndelete from public.org_users where id = any('{…}'::uuid[]);"
                 + ("\ndelete from public.profiles where id = any('{…}'::uuid[]);\n"
                    "delete from auth.users where id = any('{…}'::uuid[]);" if new["profiles"] else ""),
            warnings=self._reject_warnings(rejects),
            notes=[f"file {file.path}: {file.lines:,} data line(s), sha256 {file.sha256}",
                   "rejected rows are not imported; fix them and run the file again (rows already imported are "
                   "then 'member', nothing to do)",
                   "users missing from auth.users/profiles are " + ("created (invited, no password)"
                                                                    if create_missing_users else
                                                                    "rejected (create_missing_users=True creates them)"),
                   f"one transaction: statement_timeout={statement_timeout}, lock_timeout={lock_timeout} (SET LOCAL)"],
            parameters=parameters,
            state={"file": file, "rejects": rejects, "new_users": new["users"], "new_profiles": new["profiles"]},
        )

    def _no_file(self, session, create_missing_users: bool, timeouts: dict[str, str]) -> Plan:
        """No file given (a runbook opened with its defaults): a plan that says what to pass and blocks."""
        return self.new_plan(
            session, summary="No file given: pass csv=PATH (header email,organization,role).", confirm=0, rows=0,
            blockers=["csv is not set: give the path of the CSV file to import"],
            parameters={"csv": None, "create_missing_users": create_missing_users, **timeouts},
            state={"rejects": [], "new_users": 0, "new_profiles": 0},
        )

    @staticmethod
    def _summary(file, inserts: int, members: int, rejects: int, new: dict[str, Any]) -> str:
        if not file.lines:
            return "Nothing to do: the file has a header and no rows."
        text = (f"{file.lines:,} row(s): {inserts:,} membership(s) to insert, {members:,} already member(s) "
                f"(nothing to do), {rejects:,} rejected.")
        if new["users"] or new["profiles"]:
            text += f" Creates {new['users']:,} user(s) in auth.users and {new['profiles']:,} profile(s)."
        return text if inserts else "Nothing to do. " + text

    @staticmethod
    def _reject_warnings(rejects: list[dict[str, Any]]) -> list[str]:
        by_reason: dict[str, list[int]] = defaultdict(list)
        for r in rejects:
            reason = "duplicate of an earlier line" if r["reason"].startswith("duplicate of line") else r["reason"]
            by_reason[reason].append(r["line"])
        out = []
        for reason, lines in sorted(by_reason.items()):
            shown = ", ".join(map(str, lines[:LINES_SHOWN])) + (f" and {len(lines) - LINES_SHOWN:,} more"
                                                                if len(lines) > LINES_SHOWN else "")
            out.append(f"rejected, {reason}: {len(lines):,} line(s): {shown}")
        return out

    def execute(self, plan: Plan, ctx: Context) -> ActionResult:
        st, params = plan.state, plan.parameters
        if plan.nothing_to_do:
            return self.result(ctx, outcome="nothing_to_do", summary=plan.summary,
                               verified=[Verified("nothing to insert", True, plan.summary)])
        timeouts = {k: params[k] for k in ("statement_timeout", "lock_timeout")}
        file = read_csv(params["csv"])
        if file.sha256 != st["file"].sha256:
            raise PreconditionError(f"{file.path} changed since the plan; nothing was changed", hint="make a new plan")
        expected = plan.rows
        # One transaction; each step is timed on its own (the audit record's timings say where the time went).
        with plan.session.transaction(**timeouts) as cur:
            with ctx.step("stage and classify"):
                stage(cur, file, params["create_missing_users"])
            with ctx.step("insert users"):
                cur.execute(INSERT_USERS)
                users = sorted({r["id"] for r in cur.fetchall()})
                cur.execute(INSERT_PROFILES)
                profiles = cur.fetchone()["ids"] or []
            with ctx.step("insert memberships"):
                inserted = self._insert_members(cur)
            if inserted["n"] != expected or len(users) != st["new_users"] or len(profiles) != st["new_profiles"]:
                # Raising inside the transaction rolls every insert back.
                raise PreconditionError(
                    f"the database changed since the plan: {inserted['n']:,} membership(s) to insert, "
                    f"the plan counted {expected:,}; nothing was changed", hint="make a new plan")
            with ctx.step("verify"):
                cur.execute(VERIFY, {"inserts": list(INSERTS)})
                check = cur.fetchone()
            result = self.result(
                ctx, outcome="applied",
                summary=(f"Inserted {inserted['n']:,} membership(s)"
                         + (f", {len(users):,} user(s) and {len(profiles):,} profile(s)" if profiles else "")
                         + f" from {file.path}; {len(st['rejects']):,} row(s) rejected."),
                verified=[
                    Verified("memberships landed", check["landed"] == check["expected"] == expected,
                             f"{check['landed']:,} of {expected:,} rows in public.org_users with their role"),
                    Verified("users created", len(users) == st["new_users"] and len(profiles) == st["new_profiles"],
                             f"{len(users):,} auth.users, {len(profiles):,} profiles"),
                ],
                objects=[dict(o) for o in plan.objects],
                undo=_undo(inserted["ids"], profiles, users).as_string(plan.session.conn),
                warnings=list(plan.warnings),
            )
        ctx.progress["committed"] = f"{inserted['n']:,} memberships from {file.path}"
        return result


    @staticmethod
    def _insert_members(cur) -> dict[str, Any]:
        try:
            cur.execute(INSERT_MEMBERS, {"inserts": list(INSERTS)})
        except pgerr.UniqueViolation:  # SQLSTATE 23505: a membership committed since the classification
            raise PreconditionError("a membership of the file was added by another session during the import; "
                                    "nothing was changed", hint="run it again: that row is then 'member'") from None
        return cur.fetchone()


def rejects_frame(plan: Plan):
    """The plan's rejected rows as a pandas DataFrame: line, email, organization, role, reason (in line order)."""
    import pandas as pd

    return pd.DataFrame(plan.state.get("rejects") or [], columns=["line", "email", "organization", "role", "reason"])


BULK_IMPORT_USERS = BulkImportUsers()
plan_bulk_import_users = BULK_IMPORT_USERS.plan
