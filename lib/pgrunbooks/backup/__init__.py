"""Backups and restore drills: ``pg_dump -Fd`` with a manifest taken in the dump's own snapshot, a restore
test on a scratch server verified against that manifest, and a point-in-time-recovery drill.

Modules: :mod:`~pgrunbooks.backup.binaries` (client programs of the server's major),
:mod:`~pgrunbooks.backup.dump` (``backup_database``), :mod:`~pgrunbooks.backup.manifest` (row counts,
content hashes, file digests), :mod:`~pgrunbooks.backup.catalog` (roles, grants, policies…),
:mod:`~pgrunbooks.backup.restore` (``restore_test``), :mod:`~pgrunbooks.backup.verify`,
:mod:`~pgrunbooks.backup.pitr` (``pitr_drill``), :mod:`~pgrunbooks.backup.retention`. See docs/backup.md.
"""
