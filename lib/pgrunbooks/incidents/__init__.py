"""What the incident playbooks decide from their evidence, one module per playbook.

:mod:`.connections` ranks the causes of ``incidents/connections_exhausted`` from a capture's
connections (and, when given, pgbouncer's admin console); :mod:`.exposure` probes what one user
sees, table by table, for ``incidents/tenant_data_exposure``. Both only read. Import the
modules directly (``from pgrunbooks.incidents import connections``).
"""
