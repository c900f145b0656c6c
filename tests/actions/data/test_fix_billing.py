"""fix_billing_record on a seeded clone (PostgreSQL 18 and 15): the record and its invoice, guarded, undone; bad input refused."""

from __future__ import annotations

import decimal
import threading

import pytest

from pgrunbooks import audit
from pgrunbooks.actions import apply
from pgrunbooks.actions.data.fix_billing import plan_fix_billing_record
from pgrunbooks.errors import ConcurrentChangeError, LockTimeoutError, UsageError

# A paid record whose organization has an invoice for its month (open or paid, not void).
PICK = """
select b.id, b.amount, i.id, i.amount
  from public.billing_records b
  join public.invoices i on i.org_id = b.org_id and i.issued_at <= b.created_at
                        and b.created_at < i.issued_at + interval '1 month'
 where b.status = 'paid' and i.status in ('open', 'draft')
 order by b.id
 limit 1
"""


def test_fixes_amount_and_status_adjusts_the_invoice_and_the_undo_restores_both(session, q, state, audit_log):
    (record, amount, invoice, total), = q(PICK)
    before = state()
    new_amount = amount + decimal.Decimal("10.00")
    plan = plan_fix_billing_record(session(), record=str(record), amount=str(new_amount), status="paid")
    assert plan.confirm == str(record) and [o["table"] for o in plan.objects] == ["public.billing_records",
                                                                                  "public.invoices"]
    assert "Invoice" in plan.summary and f"{total} → {total + 10}" in plan.summary
    result = apply(plan, confirm=str(record), progress=False)
    assert result.ok
    assert q("select amount, status from public.billing_records where id = %s", (record,)) == [(new_amount, "paid")]
    assert q("select amount from public.invoices where id = %s", (invoice,)) == [(total + 10,)]

    # refunded: it is no longer owed, the invoice loses the whole (new) amount
    plan = plan_fix_billing_record(session(), record=str(record), status="refunded")
    apply(plan, confirm=str(record), progress=False)
    assert q("select amount from public.invoices where id = %s", (invoice,)) == [(total + 10 - new_amount,)]

    records = [r for r in audit.read(audit_log) if r["outcome"] == "applied"]
    assert records[0]["result"]["objects"][0]["before"]["amount"] == str(amount)
    assert records[0]["result"]["objects"][0]["after"]["amount"] == str(new_amount)
    for r in reversed(records):  # undo, newest first
        q(r["result"]["undo"])
    assert state() == before, "both undos restore every value (updated_at too)"


def test_bad_values_refuse_before_any_change(session, q, state):
    (record, *_), = q(PICK)
    before = state()
    s = session()
    for kwargs in (dict(record=str(record), amount=-1), dict(record=str(record), amount="12.345"),
                   dict(record=str(record), amount="ten"), dict(record=str(record), status="lost"),
                   dict(record=str(record)), dict(record="not-a-uuid", amount=1),
                   dict(record="00000000-0000-0000-0000-000000000000", amount=1)):
        with pytest.raises(UsageError):
            plan_fix_billing_record(s, **kwargs)
    assert state() == before


def test_a_writer_racing_the_fix_makes_it_refuse(session, q, state, pg, data_db):
    (record, amount, invoice, total), = q(PICK)
    (status, updated_at), = q("select status, updated_at from public.billing_records where id = %s", (record,))
    plan = plan_fix_billing_record(session(), record=str(record), amount="1.00")
    # A payment webhook changes the record after the plan was made: the guarded values refuse.
    q("update public.billing_records set status = 'failed', updated_at = now() where id = %s", (record,))
    before = state()
    with pytest.raises(ConcurrentChangeError, match="changed since the plan"):
        apply(plan, confirm=str(record), progress=False)
    assert state() == before

    # A writer holding the row: the fix waits at most lock_timeout, then changes nothing.
    plan = plan_fix_billing_record(session(), record=str(record), amount="1.00", lock_timeout="200ms")
    locked, release = threading.Event(), threading.Event()

    def writer():
        with pg.connect(data_db) as conn, conn.transaction():
            conn.execute("select 1 from public.billing_records where id = %s for update", (record,))
            locked.set()
            release.wait(10)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        locked.wait(10)
        with pytest.raises(LockTimeoutError):
            apply(plan, confirm=str(record), progress=False)
    finally:
        release.set()
        thread.join()
    assert state() == before
    # the module's clone is shared: put the webhook's change back
    q("update public.billing_records set status = %s, updated_at = %s where id = %s", (status, updated_at, record))


def test_the_runbook_declares_its_values_so_bad_ones_exit_3_before_connecting(project):
    """In process, as ``pgrunbooks run`` prepares a run: the notebook's constraints refuse them (no server needed)."""
    from pgrunbooks.engine.catalog import find_runbook
    from pgrunbooks.engine.prepare import prepare
    from pgrunbooks.errors import ParameterError

    runbook = find_runbook("data/fix_billing_record", project / "runbooks")
    with pytest.raises(ParameterError) as err:
        prepare(runbook, {"amount": -5, "status": "lost", "record": "INV-1"})
    text = str(err.value)
    assert err.value.exit_code == 3
    for words in ("parameter 'amount' must be at least 0", "parameter 'status' must be one of",
                  "parameter 'record' does not match the pattern"):
        assert words in text, text


def test_the_pasted_apply_command_applies_the_reviewed_fix(first_pg, data_db, q, state, tmp_path):
    """The dry run through the real CLI prints one command; pasted verbatim it applies that plan (kernels cost
    seconds: the first server only, the library tests above cover both versions)."""
    from clihelpers import action_cli, printed_apply_command, runbook_report

    (record, amount, invoice, total), = q(PICK)
    before = state()
    log, dry, applied = tmp_path / "audit.jsonl", tmp_path / "dry", tmp_path / "apply"
    dry.mkdir()
    applied.mkdir()
    proc = action_cli(first_pg, ["run", "data/fix_billing_record", "--target", f"local:{data_db}", "-p",
                                 f"record={record}", "-p", "status=refunded"], dry, log)
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    assert state() == before and not audit.read(log), "the dry run changed nothing"
    command = printed_apply_command(runbook_report(dry, "data/fix_billing_record")["outputs"])
    assert f"confirm={record}" in command and "dry_run=false" in command
    proc = action_cli(first_pg, command[1:], applied, log)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert q("select status from public.billing_records where id = %s", (record,)) == [("refunded",)]
    assert q("select amount from public.invoices where id = %s", (invoice,)) == [(total - amount,)]
    applied_record = audit.read(log)[-1]
    assert applied_record["outcome"] == "applied"
    q(applied_record["result"]["undo"])  # the module's clone is shared
    assert state() == before
