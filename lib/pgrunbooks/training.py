"""Private copies of the sandbox database for onboarding walkthroughs that change data.

The shared ``victorysync`` database is what every other notebook (and nbval) reads after
a walkthrough, so a walkthrough that applies a change works on a clone::

    from pgrunbooks import training

    target = training.create_clone("victorysync_training")   # 'local:victorysync_training'
    ...                                                        # plan, apply, verify on it
    training.drop_clone("victorysync_training")

A clone is ``CREATE DATABASE … TEMPLATE victorysync`` on the local sandbox, then
:func:`pgrunbooks.seed.settle` (statistics are per database and never copied, so the
planted dead tuples would otherwise be invisible). Only the local sandbox: creating a
database needs its superuser, which production never hands out.
"""

from __future__ import annotations

import time
from pathlib import Path

import psycopg

from pgrunbooks.errors import SandboxError, UsageError
from pgrunbooks.sandbox import ADMIN_USER, DEFAULT_DATABASE, Sandbox, create_database, drop_database

TRAINING_DATABASE = "victorysync_training"
# CREATE DATABASE … TEMPLATE needs the template to have no other session; a kernel that
# just ended may still be leaving, so wait a little for it instead of failing at once.
TEMPLATE_BUSY_WAIT_S = 20.0
PROTECTED = frozenset({DEFAULT_DATABASE, "postgres", "template0", "template1"})


def _admin(home: Path | str | None) -> tuple[Sandbox, str]:
    sandbox = Sandbox(home)
    status = sandbox.status()
    if not status.running:
        raise SandboxError(
            f"the local sandbox ({status.home}) is not running", hint="start it with `pgrunbooks sandbox start`"
        )
    return sandbox, status.conninfo("postgres", ADMIN_USER)


def _check_name(name: str, template: str | None = None) -> None:
    if not name or not name.replace("_", "").isalnum() or not name[0].isalpha():
        raise UsageError(f"invalid training database name {name!r}", hint="letters, digits and _, e.g. victorysync_training")
    if name in PROTECTED or name == template:
        # The whole point of a clone: the shared database is never dropped or changed here.
        raise UsageError(f"refusing to use {name!r} as a training copy: it is a shared database", hint=f"use e.g. {TRAINING_DATABASE!r}")


def create_clone(
    name: str = TRAINING_DATABASE,
    *,
    template: str = DEFAULT_DATABASE,
    home: Path | str | None = None,
    wait: float = TEMPLATE_BUSY_WAIT_S,
) -> str:
    """(Re)create ``name`` as a copy of ``template`` on the local sandbox; returns its target.

    An earlier copy of the same name is dropped first. Statistics are rebuilt the way
    the seed leaves them (planted dead tuples visible, the never-analyzed table left
    alone). Waits up to ``wait`` seconds while another session is still connected to the
    template. Returns ``"local:<name>"`` for ``rb.start`` / ``db.connect``.
    """
    from pgrunbooks.seed import settle

    _check_name(name, template)
    sandbox, admin = _admin(home)
    drop_database(admin, name)
    deadline = time.monotonic() + wait
    while True:
        try:
            create_database(admin, name, template=template)
            break
        except psycopg.errors.ObjectInUse:
            if time.monotonic() >= deadline:
                raise SandboxError(
                    f"cannot copy {template!r}: other sessions are still connected to it",
                    hint="close them (other notebooks' kernels, psql) and run this cell again",
                ) from None
            time.sleep(0.2)
        except psycopg.errors.InvalidCatalogName:
            raise SandboxError(
                f"the sandbox has no database {template!r} to copy",
                hint="seed it first: `pgrunbooks sandbox seed`",
            ) from None
    with psycopg.connect(sandbox.conninfo(name, ADMIN_USER), autocommit=True) as conn:
        settle(conn)
    return f"local:{name}"


def drop_clone(name: str = TRAINING_DATABASE, *, home: Path | str | None = None) -> None:
    """Drop the training copy ``name`` (sessions still connected to it are ended). Never a shared database."""
    _check_name(name)
    _, admin = _admin(home)
    drop_database(admin, name)


def audit_log_path(home: Path | str | None = None) -> Path:
    """Where walkthroughs write their audit records: ``<sandbox home>/training/audit.jsonl``.

    Real runs append to ``audit/audit.jsonl`` (or ``$PGRUNBOOKS_AUDIT_LOG``); keeping
    practice runs apart leaves the team's audit trail to real changes.
    """
    return Sandbox(home).home / "training" / "audit.jsonl"
