"""Archive old rows (the ``archive`` action): move them from a live table to its archive table, atomically, in batches.

The guide's ``INSERT INTO call_archives SELECT … ; DELETE FROM calls WHERE …`` can lose
rows (written between the two statements with an old timestamp: deleted, never
archived), duplicate them (re-run after a failure between the two), and holds locks on
every moved row until one big commit. Here each batch moves rows in **one statement**::

    with batch as materialized (
      select s.ctid from calls s
      where <next slice> and s.created_at < $cutoff [and not exists (dependent rows)]
      for update of s skip locked),
    moved as (delete from calls s where s.ctid = any(array(select ctid from batch))
              and s.created_at < $cutoff returning cols…),
    ins as (insert into call_archives (cols…, archived_at) select cols…, $run from moved returning cols…)
    select counts and content hashes of moved and ins

one transaction and one commit per batch, with ``SET LOCAL`` statement and lock timeouts.

*Slices.* ``order="physical"`` (the default for ordinary tables) walks the heap in
page ranges (``ctid >= '(p,0)' and ctid < '(q,0)'``, a TID range scan), sized adaptively
to about ``batch_size`` rows: with random uuid keys, primary-key order touches a
different heap page for nearly every row, and the whole move runs at half the speed of
the guide's single statement (see ``bench/archive.py``). ``order="key"`` walks the
primary key (``key > $last order by key limit $n``), the classic keyset batch, and is
used for partitioned tables. Either way a killed run leaves only whole batches behind
and a re-run simply continues.

*Concurrency.* The cutoff is a fixed timestamp taken at plan time, so rows written
during the run with a current timestamp can never qualify; rows written with an old
timestamp are moved or left for the next run, never lost. ``skip locked`` leaves rows
another transaction holds for the next run instead of waiting on them; locked rows are
deleted by their ``ctid``, which cannot change while we hold the lock, and the cutoff
is re-checked on the row version being deleted.

*Dependents.* Foreign keys that reference the source (``recordings.call_id → calls ON
DELETE CASCADE``) would silently delete, block or null dependent rows. The plan counts
them and blocks (``on_dependents="stop"``) unless the dependents are archived first by
an earlier pair or ``on_dependents="skip"`` leaves referenced rows in place. Each batch
only takes rows with no dependent row (``not exists``); a dependent committed between
the batch's snapshot and its locks would still be reached by the cascade, so after the
move the batch reads its own transaction's counters (``pg_stat_xact_all_tables``) for
the dependent tables: any cascaded delete or update rolls the batch back and retries it.
A column that references the source without a foreign key (``missing_foreign_keys``'s
inference, :func:`~pgrunbooks.actions.catalog.inferred_references`) is a dependent too: it
cannot cascade, but deleting what it points at would orphan its rows.

*Interruptions.* Ctrl-C (``KeyboardInterrupt``) rolls back the batch in flight (or counts it
when it came during its COMMIT) and propagates: no further batch starts, and the audit
records ``interrupted`` with what was committed. Batches commit with ``synchronous_commit
= on`` whatever the server's setting; a session advisory lock per source refuses a second
concurrent archive of the same table.

*Verification.* Every batch compares, inside its transaction, the row count and a
content hash of the rows deleted with those inserted, and rolls back on a mismatch.
After the run the archive's rows of this run (``archived_at`` = the run's timestamp) are
re-read: count, content hash equal to the deleted rows', disjoint from the source, all
older than the cutoff. Then ``VACUUM (ANALYZE)`` the source outside any transaction.
"""

from __future__ import annotations

from pgrunbooks.actions.archive import apply as _apply
from pgrunbooks.actions.archive import plan as _plan
from pgrunbooks.actions.archive.pair import DEFAULT_PAIRS
from pgrunbooks.actions.base import Action


class Archive(Action):
    """Move rows older than a cutoff from live tables to their archive tables, in atomic batches."""

    name = "archive"
    title = "Archive old rows"
    confirm_hint = "the number of rows to move"
    outline_columns = ("source", "archive")

    # The steps live in their own modules: plan.py (the dry run), apply.py (the batches and the verification).
    plan = _plan.build_plan
    execute = _apply.execute


ARCHIVE = Archive()
plan_archive = ARCHIVE.plan

__all__ = ["ARCHIVE", "DEFAULT_PAIRS", "Archive", "plan_archive"]
