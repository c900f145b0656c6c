"""Seed a sandbox database like VictorySync's Supabase project.

``seed(conn)`` = ``install_schema`` + ``load_data`` + ``apply_faults`` +
``settle``. See ``docs/faults.md`` for the planted faults.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Iterable, Optional, Union

import psycopg

from .data import Progress, Sizes, default_anchor, load_data
from .faults import (
    CLUSTER_FAULTS,
    DATABASE_FAULTS,
    FAULTS,
    Fault,
    UnknownFault,
    apply_faults,
    parse_faults,
    revert_faults,
)
from .runtime import RUNTIME_FAULTS, RUNTIME_FINDS
from .schema import install_roles, install_schema
from .settle import settle

DATABASE = "victorysync"

__all__ = [
    "CLUSTER_FAULTS",
    "DATABASE",
    "DATABASE_FAULTS",
    "FAULTS",
    "Fault",
    "RUNTIME_FAULTS",
    "RUNTIME_FINDS",
    "SeedResult",
    "Sizes",
    "UnknownFault",
    "apply_faults",
    "default_anchor",
    "install_roles",
    "install_schema",
    "load_data",
    "parse_faults",
    "revert_faults",
    "seed",
    "settle",
]


@dataclass(frozen=True)
class SeedResult:
    #: rows per table (``"auth.users"`` and the public tables by bare name)
    counts: dict[str, int]
    #: the faults applied, in apply order
    faults: tuple[str, ...]
    #: wall-clock seconds for the whole seed
    seconds: float


def seed(
    conn: psycopg.Connection,
    *,
    scale: float = 1.0,
    faults: Union[str, Iterable[str], None] = "all",
    anchor: Optional[datetime] = None,
    progress: Optional[Progress] = None,
) -> SeedResult:
    """Install the schema, load data, plant *faults* and settle statistics.

    *conn*: psycopg 3 connection, autocommit, as a superuser to a fresh empty
    database. *faults*: ``"all"`` (database and cluster faults), ``"none"``,
    ``"a,b"`` or a list of names. Cluster faults (``extra_superuser``) change
    the whole cluster: one that *faults* does not name is reverted, so the
    cluster holds exactly the faults asked for (``"none"`` after ``"all"`` is
    clean again).
    """
    started = time.monotonic()
    names = parse_faults(faults)  # fail on a bad name before touching anything
    install_schema(conn)
    counts = load_data(conn, scale=scale, anchor=anchor, progress=progress)
    step = time.monotonic()
    applied = apply_faults(conn, names)
    # An earlier seed's cluster fault is seen by this database too: remove it unless asked for.
    revert_faults(conn, [name for name in CLUSTER_FAULTS if name not in applied])
    if progress is not None and applied:
        progress("faults", len(applied), time.monotonic() - step)
    step = time.monotonic()
    settle(conn, applied)
    if progress is not None:
        progress("settle", 0, time.monotonic() - step)
    return SeedResult(counts=counts, faults=tuple(applied), seconds=time.monotonic() - started)
