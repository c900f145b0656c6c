"""Choose faults by name, plant them, revert them."""

from __future__ import annotations

from typing import Iterable, Union

import psycopg

from pgrunbooks.errors import UnknownFault

from ..schema import ensure_autocommit
from .catalogue import FAULT_LIST
from .model import Fault

#: every planted fault by name, in the order they are applied
FAULTS: dict[str, Fault] = {f.name: f for f in FAULT_LIST}
DATABASE_FAULTS: tuple[str, ...] = tuple(n for n, f in FAULTS.items() if f.scope == "database")
CLUSTER_FAULTS: tuple[str, ...] = tuple(n for n, f in FAULTS.items() if f.scope == "cluster")

FaultSpec = Union[str, Iterable[str], None]


def parse_faults(spec: FaultSpec) -> list[str]:
    """``"all"`` | ``"none"`` | ``"a,b"`` (or an iterable of names) -> names in apply order.

    Unknown names raise :class:`UnknownFault` (a ``ValueError``) listing the valid ones.
    """
    if spec is None:
        return []
    if isinstance(spec, str):
        words = [w.strip() for w in spec.split(",") if w.strip()]
    else:
        words = []
        for item in spec:
            if not isinstance(item, str):
                raise TypeError(f"fault names must be strings, not {type(item).__name__}")
            words.extend(w.strip() for w in item.split(",") if w.strip())
    unknown = [w for w in words if w not in FAULTS and w not in ("all", "none")]
    if unknown:
        raise UnknownFault(unknown, FAULTS)
    if "all" in words:  # "all" wins over anything listed with it
        return list(FAULTS)
    wanted = set(words)
    return [name for name in FAULTS if name in wanted]


def apply_faults(conn: psycopg.Connection, names: FaultSpec) -> list[str]:
    """Plant the named faults (in catalogue order) and return their names.

    *conn*: superuser, autocommit, to a database seeded by :func:`load_data`.
    A fault that is already present is not planted twice (and is still returned).
    """
    ensure_autocommit(conn)
    chosen = parse_faults(names)
    for name in chosen:
        if not FAULTS[name].present(conn):
            FAULTS[name].apply(conn)
    return chosen


def revert_faults(conn: psycopg.Connection, names: FaultSpec) -> list[str]:
    """Revert the named faults that can be reverted (the cluster-scope ones); return their names."""
    ensure_autocommit(conn)
    reverted = []
    for name in parse_faults(names):
        revert = FAULTS[name].revert
        if revert is not None:
            revert(conn)
            reverted.append(name)
    return reverted
