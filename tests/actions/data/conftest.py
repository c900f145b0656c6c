"""Fixtures of the data-migration tests: a private seeded clone per test, sessions on it, CSV files.

Clones skip ``settle`` (statistics): these actions plan from rows, not from the checks.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

import pytest
from psycopg import sql

from pgrunbooks.db import connect


@pytest.fixture(scope="module")
def data_db(pg, clean_template):
    """A private copy of the clean seeded database for one test module (no statistics rebuilt), dropped
    afterwards. Each test leaves it as it found it (its undo, or a clean-up at its end): a clone costs a
    second (``pg.create_database`` copies the template's files, ``STRATEGY file_copy``)."""
    name = f"d_{uuid.uuid4().hex[:10]}"
    yield pg.create_database(name, template=clean_template)
    pg.drop_database(name)


@pytest.fixture
def merge_db(pg, faults_template):
    """A private copy of the planted-faults template. Statistics are not rebuilt (a merge plans from rows,
    not from the checks)."""
    name = f"m_{uuid.uuid4().hex[:10]}"
    yield pg.create_database(name, template=faults_template)
    pg.drop_database(name)


@pytest.fixture
def session(pg, data_db):
    """``session(read_only=False)``: a pgrunbooks Session on :func:`data_db` as ``postgres``, closed afterwards."""
    opened = []

    def make(read_only: bool = False, runbook: str = "data_test"):
        s = connect(pg.conninfo(data_db), runbook=runbook, read_only=read_only)
        opened.append(s)
        return s

    yield make
    for s in opened:
        s.close()


#: every table these actions write (and the ones they must not).
TOUCHED = ("public.organizations", "public.org_users", "public.profiles", "auth.users", "public.billing_records",
           "public.invoices")


@pytest.fixture
def state(pg, data_db):
    """``state()``: an md5 of every row of :data:`TOUCHED` (what any of these actions could change)."""
    def read():
        with pg.connect(data_db) as conn:
            return {t: conn.execute(sql.SQL("select md5(coalesce(string_agg(r::text, ',' order by r::text), ''))"
                                            " from {} r").format(sql.Identifier(*t.split("."))),).fetchone()[0]
                    for t in TOUCHED}

    return read


@pytest.fixture
def q(pg, data_db):
    """``q(query, params)``: the rows (tuples) of ``query`` on :func:`data_db`, as the superuser."""
    def run(query, params=None):
        with pg.connect(data_db) as conn:
            cur = conn.execute(query, params)
            return cur.fetchall() if cur.description else []

    return run


@pytest.fixture
def kill_when_waiting(pg, data_db, q):
    """``kill_when_waiting(script, *args, lock=…, app=…)``: hold ``lock`` (a ``lock table …`` statement) in
    a transaction, run ``script`` (Python, its argv = the database's conninfo then ``args``) in a
    subprocess, SIGKILL it as soon as its session (``application_name = 'pgrunbooks/<app>'``) waits on that
    lock — in the middle of its transaction — then release the lock and wait until the server has
    ended the killed backend. Returns the subprocess's return code."""
    def run(script: str, *args: str, lock: str, app: str) -> int:
        waiting = ("select 1 from pg_catalog.pg_stat_activity where application_name = %s"
                   " and wait_event_type = 'Lock'")
        present = "select 1 from pg_catalog.pg_stat_activity where application_name = %s"
        with pg.connect(data_db) as blocker:
            blocker.execute("begin")
            blocker.execute(lock)
            proc = subprocess.Popen([sys.executable, "-c", script, pg.conninfo(data_db), *args],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                deadline = time.monotonic() + 60
                while not q(waiting, (f"pgrunbooks/{app}",)):
                    assert proc.poll() is None, proc.communicate()
                    assert time.monotonic() < deadline, f"{app} never waited on the held lock"
                    time.sleep(0.05)
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(10)
            finally:
                if proc.poll() is None:
                    proc.kill()
            blocker.execute("rollback")
        deadline = time.monotonic() + 30
        while q(present, (f"pgrunbooks/{app}",)):
            assert time.monotonic() < deadline, "the killed client's backend is still there"
            time.sleep(0.05)
        return proc.returncode

    return run
