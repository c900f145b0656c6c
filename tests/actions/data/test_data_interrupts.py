"""kill -9 in the middle of add_organization's and fix_billing_record's transactions (PostgreSQL 18 and 15):
each is killed while it waits on a lock after its first write, and nothing of it lands."""

from __future__ import annotations

import signal

from pgrunbooks.actions import apply
from pgrunbooks.actions.data.fix_billing import plan_fix_billing_record

SCRIPT = """
import sys
from pgrunbooks.actions import apply, plan_add_organization, plan_fix_billing_record
from pgrunbooks.db import connect
s = connect(sys.argv[1], runbook="data_kill", read_only=False)
if sys.argv[2] == "add_organization":
    plan = plan_add_organization(s, name="Killed Dental", slug="killed-dental", admin=sys.argv[3], lock_timeout="60s")
else:
    plan = plan_fix_billing_record(s, record=sys.argv[3], amount="1.00", status="paid", lock_timeout="60s")
apply(plan, confirm=plan.confirm, progress=False)
"""

PAID_RECORD_WITH_INVOICE = """
select b.id
  from public.billing_records b
  join public.invoices i on i.org_id = b.org_id and i.issued_at <= b.created_at
                        and b.created_at < i.issued_at + interval '1 month'
 where b.status = 'paid' and i.status in ('open', 'draft')
 order by b.id
 limit 1
"""


def test_add_organization_killed_after_inserting_the_organization_leaves_none(q, state, kill_when_waiting):
    admin = q("select email from public.profiles order by id limit 1")[0][0]
    before = state()
    # org_users held in SHARE mode: the organization row is inserted, the owner's membership waits.
    code = kill_when_waiting(SCRIPT, "add_organization", admin, lock="lock table public.org_users in share mode",
                             app="data_kill")
    assert code == -signal.SIGKILL
    assert state() == before and q("select count(*) from public.organizations where slug = 'killed-dental'") == [(0,)]


def test_fix_billing_killed_after_updating_the_record_leaves_record_and_invoice_as_they_were(
        session, q, state, kill_when_waiting):
    (record,), = q(PAID_RECORD_WITH_INVOICE)
    before = state()
    # invoices held in SHARE mode: both rows are locked (FOR UPDATE takes ROW SHARE), the record is
    # updated, the invoice's update waits.
    code = kill_when_waiting(SCRIPT, "fix_billing_record", str(record), lock="lock table public.invoices in share mode",
                             app="data_kill")
    assert code == -signal.SIGKILL
    assert state() == before
    # and the same fix applies afterwards: nothing was left locked or half-done
    plan = plan_fix_billing_record(session(), record=str(record), amount="1.00", status="paid")
    result = apply(plan, confirm=plan.confirm, progress=False)
    assert result.ok
    q(result.undo)  # the module's clone is shared
    assert state() == before
