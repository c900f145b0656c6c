"""Data migrations: actions over tenant data (``runbooks/data/``), each one transaction, audited with its undo.

* :data:`ADD_ORGANIZATION` (``add_organization.py``): a new organization and its owner.
* :data:`BULK_IMPORT_USERS` (``bulk_import.py``, ``bulk_import_csv.py``): memberships from a CSV,
  COPY-ed into a staging table and validated in SQL.
* :data:`FIX_BILLING_RECORD` (``fix_billing.py``): one billing record's amount/status, its invoice kept consistent.
* :data:`MERGE_ORGANIZATIONS` (``merge_organizations.py``, ``merge_discovery.py``, ``merge_rules.py``):
  merge organization B into A, collisions resolved by declared rules, the moved keys kept for the undo.

``common.py`` holds the look-ups they share (an organization by slug or id, a profile by email or id).
"""

from pgrunbooks.actions.data.add_organization import ADD_ORGANIZATION, plan_add_organization
from pgrunbooks.actions.data.bulk_import import BULK_IMPORT_USERS, plan_bulk_import_users
from pgrunbooks.actions.data.common import Org, Profile, resolve_organization, resolve_profile
from pgrunbooks.actions.data.fix_billing import FIX_BILLING_RECORD, plan_fix_billing_record
from pgrunbooks.actions.data.merge_organizations import MERGE_ORGANIZATIONS, plan_merge_organizations

__all__ = [
    "ADD_ORGANIZATION",
    "BULK_IMPORT_USERS",
    "FIX_BILLING_RECORD",
    "MERGE_ORGANIZATIONS",
    "Org",
    "Profile",
    "plan_add_organization",
    "plan_bulk_import_users",
    "plan_fix_billing_record",
    "plan_merge_organizations",
    "resolve_organization",
    "resolve_profile",
]
