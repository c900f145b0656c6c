"""Correct one billing record's amount and/or status, guarded, with its invoice kept consistent.

The guide's ``UPDATE billing_records SET amount = 99.99, status = 'paid' … WHERE id = …``
overwrites whatever is there now (a payment webhook may have changed it a second earlier)
and leaves the invoice of that billing period with a total that no longer adds up. Here:

* the plan reads the record and captures its current amount, status and ``updated_at``;
  apply locks the row (``FOR UPDATE``) and refuses with
  :class:`~pgrunbooks.errors.ConcurrentChangeError` when any of them changed since;
* **the dependent invoice**: the seeded schema has no foreign key between them; an
  organization gets one invoice per month (``issued_at`` at the start of the month), so a
  record belongs to its organization's invoice whose month ``[issued_at, issued_at + 1
  month)`` contains the record's ``created_at``. A charge counts toward that invoice's
  ``amount`` while it is ``pending`` or ``paid`` (a ``failed`` or ``refunded`` one is not
  owed), so the invoice total moves by *counted after − counted before*. A ``void``
  invoice bills nothing and is left alone; a ``paid`` invoice whose total grows gets a
  warning (the difference is still to collect). The invoice is guarded like the record;
* one transaction under ``SET LOCAL`` timeouts; verified by reading both rows back; the
  audit record holds before and after, and the undo SQL restores both (guarded by the
  after-values, so it cannot overwrite a later change).
"""

from __future__ import annotations

import decimal
from typing import Any

from psycopg import sql

from pgrunbooks.actions.base import Action, ActionResult, Context, Plan, Verified
from pgrunbooks.actions.data.common import as_uuid
from pgrunbooks.errors import ConcurrentChangeError, UsageError

#: ``billing_records.status`` (its CHECK constraint in the seeded schema).
STATUSES = ("pending", "paid", "failed", "refunded")
#: statuses whose amount an invoice bills.
COUNTED = ("pending", "paid")
#: numeric(12, 2)
MAX_AMOUNT = decimal.Decimal("9999999999.99")

RECORD = """
select b.id, b.org_id, b.amount, b.status, b.updated_at, b.created_at, b.description, b.currency
  from public.billing_records b
 where b.id = %(id)s
"""
INVOICE = """
select i.id, i.number, i.amount, i.status
  from public.invoices i
 where i.org_id = %(org)s and i.issued_at <= %(at)s and %(at)s < i.issued_at + interval '1 month'
 order by i.issued_at desc, i.id
 limit 1
"""
RECORD_LOCKED = RECORD.rstrip() + "\n   for update of b\n"
INVOICE_LOCKED = "select i.amount, i.status from public.invoices i where i.id = %(id)s for update"
UPDATE_RECORD = """
update public.billing_records b
   set amount = %(amount)s, status = %(status)s, updated_at = pg_catalog.now()
 where b.id = %(id)s and b.amount = %(old_amount)s and b.status = %(old_status)s
returning b.amount, b.status, b.updated_at
"""
UPDATE_INVOICE = """
update public.invoices i
   set amount = i.amount + %(delta)s
 where i.id = %(invoice)s and i.amount = %(old_total)s
returning i.amount
"""


def check_values(record: Any, amount: Any, status: Any) -> tuple[Any, decimal.Decimal | None, str | None]:
    """(record id, amount, status) cleaned; :class:`UsageError` for a bad one (exit 3, before any change)."""
    rid = as_uuid(record)
    if rid is None:
        raise UsageError(f"record must be a billing record id (a UUID), not {record!r}")
    if amount is None and status is None:
        raise UsageError("nothing to fix: give amount, status or both")
    value = None
    if amount is not None:
        try:
            if isinstance(amount, bool):
                raise decimal.InvalidOperation
            value = decimal.Decimal(str(amount))
        except decimal.InvalidOperation:
            raise UsageError(f"amount must be a number, not {amount!r}") from None
        if not value.is_finite() or value < 0 or value > MAX_AMOUNT or value != value.quantize(decimal.Decimal("0.01")):
            raise UsageError(f"amount must be between 0 and {MAX_AMOUNT} with at most 2 decimals, not {amount!r}",
                             hint="a refund is status='refunded', not a negative amount")
        value = value.quantize(decimal.Decimal("0.01"))
    if status is not None and status not in STATUSES:
        raise UsageError(f"status must be one of {', '.join(STATUSES)}, not {status!r}")
    return rid, value, status


def _counted(amount: decimal.Decimal, status: str) -> decimal.Decimal:
    return amount if status in COUNTED else decimal.Decimal("0.00")


def _undo(before: dict[str, Any], after: dict[str, Any], invoice: dict[str, Any] | None, delta) -> sql.Composed:
    """SQL restoring the record (and the invoice total), only while they still hold the after-values."""
    parts = [sql.SQL(
        "update public.billing_records set amount = {a}, status = {s}, updated_at = {u}\n"
        " where id = {id} and amount = {na} and status = {ns};"
    ).format(a=sql.Literal(before["amount"]), s=sql.Literal(before["status"]), u=sql.Literal(before["updated_at"]),
             id=sql.Literal(str(before["id"])), na=sql.Literal(after["amount"]), ns=sql.Literal(after["status"]))]
    if invoice is not None and delta:
        parts.append(sql.SQL("update public.invoices set amount = {old} where id = {id} and amount = {new};").format(
            old=sql.Literal(invoice["amount"]), id=sql.Literal(str(invoice["id"])), new=sql.Literal(invoice["amount"] + delta)))
    return sql.SQL("\n").join(parts)


class FixBillingRecord(Action):
    """Set a billing record's amount and/or status; adjust its invoice's total to match."""

    name = "fix_billing_record"
    title = "Fix a billing record"
    confirm_hint = "the billing record's id"
    outline_columns = ("table", "key", "change")

    def plan(
        self,
        session,
        *,
        record: Any,
        amount: Any = None,
        status: str | None = None,
        statement_timeout: str = "10s",
        lock_timeout: str = "2s",
    ) -> Plan:
        """Dry run: read the record and its invoice, say what changes. Changes nothing.

        :class:`UsageError` (exit 3) for a malformed or unknown record, a negative or
        malformed amount, an unknown status. Confirm with the record id.
        """
        rid, new_amount, new_status = check_values(record, amount, status)
        before = session.fetch_one(RECORD, {"id": rid})
        if before is None:
            raise UsageError(f"no billing record has the id {rid}",
                             hint="find it with: select id, org_id, amount, status from public.billing_records where …")
        after = {"amount": new_amount if new_amount is not None else before["amount"],
                 "status": new_status or before["status"]}
        invoice = session.fetch_one(INVOICE, {"org": before["org_id"], "at": before["created_at"]})
        delta = _counted(after["amount"], after["status"]) - _counted(before["amount"], before["status"])
        objects, warnings, notes = self._objects(before, after, invoice, delta)
        parameters = {"record": str(rid), "amount": None if new_amount is None else str(new_amount),
                      "status": new_status, "statement_timeout": statement_timeout, "lock_timeout": lock_timeout}
        touches_invoice = invoice is not None and invoice["status"] != "void" and delta != 0
        undo = _undo(before, after, invoice if touches_invoice else None, delta)
        return self.new_plan(
            session,
            summary=self._summary(before, after, invoice, delta, touches_invoice),
            confirm=str(rid),
            statements=[UPDATE_RECORD.strip() + ";"] + ([UPDATE_INVOICE.strip() + ";"] if touches_invoice else []),
            objects=objects,
            rows=len(objects),
            undo=undo.as_string(session.conn),
            warnings=warnings,
            notes=notes + ["apply locks the record (and the invoice) FOR UPDATE and refuses if either changed since "
                           "this plan", f"one transaction, statement_timeout={statement_timeout}, "
                           f"lock_timeout={lock_timeout} (SET LOCAL)"],
            parameters=parameters,
            state={"before": before, "after": after, "invoice": invoice if touches_invoice else None,
                   "delta": delta if touches_invoice else decimal.Decimal("0.00")},
        )

    @staticmethod
    def _objects(before, after, invoice, delta) -> tuple[list, list[str], list[str]]:
        changes = [f"{k} {before[k]} → {after[k]}" for k in ("amount", "status") if before[k] != after[k]]
        objects, warnings, notes = [], [], []
        if changes:
            objects.append({"table": "public.billing_records", "key": str(before["id"]), "change": ", ".join(changes),
                            "before": f"{before['amount']} {before['status']}", "after": f"{after['amount']} {after['status']}"})
        if invoice is None:
            notes.append(f"no invoice covers {before['created_at']:%Y-%m} for this organization: no invoice to adjust")
        elif delta and invoice["status"] == "void":
            notes.append(f"invoice {invoice['number']} is void: it bills nothing, its total is left as it is")
        elif delta:
            objects.append({"table": "public.invoices", "key": invoice["number"], "change": f"amount {delta:+}",
                            "before": f"{invoice['amount']} {invoice['status']}",
                            "after": f"{invoice['amount'] + delta} {invoice['status']}"})
            if invoice["status"] == "paid" and delta > 0:
                warnings.append(f"invoice {invoice['number']} is paid: its total grows by {delta}, which is still to collect")
        else:
            notes.append(f"invoice {invoice['number']} ({invoice['status']}): its total does not change")
        return objects, warnings, notes

    @staticmethod
    def _summary(before, after, invoice, delta, touches_invoice) -> str:
        if before["amount"] == after["amount"] and before["status"] == after["status"]:
            return f"Billing record {before['id']} already has amount {after['amount']} and status {after['status']}: nothing to do."
        text = (f"Set billing record {before['id']} ({before['description']}) from {before['amount']} {before['status']} "
                f"to {after['amount']} {after['status']}.")
        if touches_invoice:
            text += f" Invoice {invoice['number']} total {invoice['amount']} → {invoice['amount'] + delta}."
        return text

    def execute(self, plan: Plan, ctx: Context) -> ActionResult:
        st = plan.state
        before, after, invoice, delta = st["before"], st["after"], st["invoice"], st["delta"]
        if plan.nothing_to_do:
            now = plan.session.fetch_one(RECORD, {"id": before["id"]})
            ok = now is not None and (now["amount"], now["status"]) == (after["amount"], after["status"])
            return self.result(ctx, outcome="nothing_to_do", summary="Nothing to do.",
                               verified=[Verified("record already as asked", ok, f"{now and now['amount']} {now and now['status']}")])
        timeouts = {k: plan.parameters[k] for k in ("statement_timeout", "lock_timeout")}
        with ctx.step("update record and invoice"), plan.session.transaction(**timeouts) as cur:
            self._recheck(cur, before, invoice)
            cur.execute(UPDATE_RECORD, {"id": before["id"], "amount": after["amount"], "status": after["status"],
                                        "old_amount": before["amount"], "old_status": before["status"]})
            new = cur.fetchone()
            total = None
            if invoice is not None:
                cur.execute(UPDATE_INVOICE, {"invoice": invoice["id"], "delta": delta, "old_total": invoice["amount"]})
                total = cur.fetchone()["amount"]
            verified = [Verified("record updated", (new["amount"], new["status"]) == (after["amount"], after["status"]),
                                 f"{new['amount']} {new['status']}")]
            if invoice is not None:
                verified.append(Verified("invoice total adjusted", total == invoice["amount"] + delta,
                                         f"{invoice['number']}: {invoice['amount']} → {total}"))
            result = self.result(
                ctx, outcome="applied",
                summary=f"Billing record {before['id']}: {before['amount']} {before['status']} → {new['amount']} {new['status']}"
                        + (f"; invoice {invoice['number']} total {invoice['amount']} → {total}" if invoice else "") + ".",
                verified=verified,
                objects=[{"table": "public.billing_records", "key": str(before["id"]),
                          "before": {k: str(before[k]) for k in ("amount", "status", "updated_at")},
                          "after": {k: str(new[k]) for k in ("amount", "status", "updated_at")}}]
                + ([{"table": "public.invoices", "key": invoice["number"], "before": {"amount": str(invoice["amount"])},
                     "after": {"amount": str(total)}}] if invoice else []),
                undo=_undo(before, new, invoice, delta).as_string(plan.session.conn),
            )
        ctx.progress["committed"] = f"billing record {before['id']} updated"
        return result

    @staticmethod
    def _recheck(cur, before: dict[str, Any], invoice: dict[str, Any] | None) -> None:
        """Lock the rows and refuse when they changed since the plan (someone else wrote them)."""
        cur.execute(RECORD_LOCKED, {"id": before["id"]})
        now = cur.fetchone()
        keys = ("amount", "status", "updated_at")
        if now is None or any(now[k] != before[k] for k in keys):
            seen = "deleted" if now is None else ", ".join(f"{k} {before[k]} → {now[k]}" for k in keys if now[k] != before[k])
            raise ConcurrentChangeError(f"billing record {before['id']} changed since the plan ({seen}); nothing was changed",
                                        hint="make a new plan from the current values and review it")
        if invoice is not None:
            cur.execute(INVOICE_LOCKED, {"id": invoice["id"]})
            inv = cur.fetchone()
            if inv is None or (inv["amount"], inv["status"]) != (invoice["amount"], invoice["status"]):
                raise ConcurrentChangeError(f"invoice {invoice['number']} changed since the plan; nothing was changed",
                                            hint="make a new plan from the current values and review it")


FIX_BILLING_RECORD = FixBillingRecord()
plan_fix_billing_record = FIX_BILLING_RECORD.plan
