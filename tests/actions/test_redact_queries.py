"""Query text shown in plans masks every form of a role password literal (redact.redact_sql)."""

from __future__ import annotations

import time

import psycopg
import pytest

from pgrunbooks.actions import plan_terminate
from pgrunbooks.db import connect
from pgrunbooks.redact import MASK, redact_sql

SECRET = "Sw0rdfish"
FORMS = [
    f"alter role r password '{SECRET}'",
    f"ALTER USER r PASSWORD '{SECRET}' valid until 'infinity'",
    f"create role r login password'{SECRET}'",
    f"alter role r password E'{SECRET}\\'x'",
    f"alter role r encrypted password e'{SECRET}'",
    f"alter role r password $${SECRET}$$",
    f"alter role r password $pw${SECRET} with $$ inside$pw$",
    f"alter role r password U&'{SECRET}'",
    f"alter role r password 'it''s {SECRET}'",
    f"alter role r password '{SECRET}",  # cut off by pg_stat_activity's query length
]


@pytest.mark.parametrize("text", FORMS)
def test_every_password_literal_form_is_masked(text):
    masked = redact_sql(text)
    assert SECRET not in masked
    assert MASK in masked


def test_text_after_the_password_literal_is_kept():
    assert redact_sql(f"alter role r password $${SECRET}$$ valid until '2030-01-01'") == (
        f"alter role r password '{MASK}' valid until '2030-01-01'"
    )


def test_terminate_plan_masks_a_dollar_quoted_password(pg, clean_db):
    """A session whose last statement set a password with $$…$$ shows in the plan without it."""
    role = "redact_probe_role"
    with psycopg.connect(pg.admin_conninfo(clean_db), autocommit=True, application_name="victorysync/redact") as other:
        other.execute(f"drop role if exists {role}")
        other.execute(f"create role {role} password $pw${SECRET}$pw$")
        try:
            time.sleep(0.3)
            with connect(pg.conninfo(clean_db), runbook="terminate_sessions", read_only=False) as s:
                plan = plan_terminate(s, states=["idle"], min_duration="0.1 seconds", applications=["victorysync/redact"],
                                      allow_superusers=True)
            row = next(o for o in plan.objects if o["pid"] == other.info.backend_pid)
            assert "create role" in row["query"] and SECRET not in row["query"]
            assert SECRET not in str(plan)
        finally:
            other.execute(f"drop role if exists {role}")
