"""Planted faults: small, named, deterministic changes that the checks must find.

Each :class:`Fault` is an entry of :mod:`.catalogue` plus its SQL files under
``seed/sql/faults/``: it plants itself (``apply``), says whether it is there (``present``),
names the check ids that must report it (``finds``) and, for the cluster-scope fault (which
every database of the cluster sees), removes itself (``revert``). ``docs/faults.md`` is
rendered from the catalogue by :mod:`.docs`.
"""

from __future__ import annotations

from .catalogue import (
    ANON_POLICY,
    DEAD_TUPLES_TABLE,
    DEFINER_FUNCTION,
    DUPLICATE_INDEX,
    EXTRA_SUPERUSER,
    INVALID_INDEX,
    LEAKY_POLICY,
    NEVER_ANALYZED,
    NEVER_ANALYZED_TABLE,
    ORPHAN_COUNTS,
    ORPHAN_FKS,
    ORPHAN_REFERENCES,
    SEQUENCE,
    SEQUENCE_VALUE,
    STAGING_ROWS,
    UID_POLICY,
    UNUSED_INDEX,
)
from .model import Fault, data_anchor
from .plant import CLUSTER_FAULTS, DATABASE_FAULTS, FAULTS, UnknownFault, apply_faults, parse_faults, revert_faults

__all__ = [
    "ANON_POLICY",
    "CLUSTER_FAULTS",
    "DATABASE_FAULTS",
    "DEAD_TUPLES_TABLE",
    "DEFINER_FUNCTION",
    "DUPLICATE_INDEX",
    "EXTRA_SUPERUSER",
    "FAULTS",
    "Fault",
    "INVALID_INDEX",
    "LEAKY_POLICY",
    "NEVER_ANALYZED",
    "NEVER_ANALYZED_TABLE",
    "ORPHAN_COUNTS",
    "ORPHAN_FKS",
    "ORPHAN_REFERENCES",
    "SEQUENCE",
    "SEQUENCE_VALUE",
    "STAGING_ROWS",
    "UID_POLICY",
    "UNUSED_INDEX",
    "UnknownFault",
    "apply_faults",
    "data_anchor",
    "parse_faults",
    "revert_faults",
]
