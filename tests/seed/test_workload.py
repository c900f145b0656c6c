"""The app workload: pgbench with the app's scripts, bounded, leaving nothing running."""

from __future__ import annotations

import time
import uuid

import pytest

from pgrunbooks.errors import UsageError
from pgrunbooks.seed import workload


@pytest.mark.parametrize("value, seconds", [("30s", 30), ("2m", 120), ("1.5m", 90), (" 3 ", 3), (5, 5)])
def test_parse_duration(value, seconds):
    assert workload.parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["", "3x", "-1s", "0s", "61m", "abc", True])
def test_bad_durations_are_usage_errors(value):
    with pytest.raises(UsageError):
        workload.parse_duration(value)


@pytest.mark.parametrize("clients", [0, 51, "2", 1.5])
def test_bad_client_counts_are_usage_errors(clients):
    with pytest.raises(UsageError):
        workload._check_clients(clients)


def test_only_local_targets():
    with pytest.raises(UsageError, match="local sandbox only"):
        workload.prepare("host=db.example.com dbname=postgres", duration=1, clients=1)


def test_parse_output_reads_pgbench_summary():
    text = ("transaction type: multiple scripts\nnumber of clients: 2\nduration: 3 s\n"
            "number of transactions actually processed: 1234\nnumber of failed transactions: 0 (0.000%)\n"
            "tps = 411.300000 (without initial connection time)\n")
    prepared = workload.Prepared(argv=[], env={}, duration=3, clients=2, pgbench="pgbench")
    result = workload.parse_output(text, prepared)
    assert (result.tps, result.transactions, result.seconds, result.failed) == (411.3, 1234, 3.0, 0)


def test_pgbench_matches_the_server(pg):
    path = workload.pgbench_path(pg.major)
    assert workload._version(__import__("pathlib").Path(path)) == pg.major


def test_running_in_the_background(pg, clean_template):
    name = pg.create_database(f"w_{uuid.uuid4().hex[:10]}", template=clean_template)
    try:
        admin = pg.admin_conninfo(name)
        with pg.connect(name) as mon:
            calls = mon.execute("select count(*) from public.calls").fetchone()[0]
            with workload.running(admin, duration=1, clients=2) as handle:
                assert mon.execute("select count(*) from pg_stat_activity where application_name = %s",
                                   (workload.APPLICATION_NAME,)).fetchone()[0] == 2
                result = handle.wait()
            assert result.tps > 0 and result.transactions > 0 and result.failed == 0
            # The app's statements, each as prepared by the app: inserts, tenant reads as authenticated.
            rows = mon.execute(
                "select r.rolname, s.query from extensions.pg_stat_statements s join pg_roles r on r.oid = s.userid"
                " where s.dbid = (select oid from pg_database where datname = current_database()) and s.calls > 0"
            ).fetchall()
            by_role = {(role, q.split(" from ")[0][:40]) for role, q in rows}
            assert any(role == "postgres" and q.startswith("insert into public.calls") for role, q in by_role)
            assert any(role == "postgres" and q.startswith("select i.status") for role, q in by_role)
            # Tenant reads run as `authenticated` (set local role), through RLS.
            tenant = [q for role, q in rows if role == "authenticated"]
            assert any("from public.calls c where c.org_id" in q for q in tenant)
            assert any("public.billing_records b" in q for q in tenant)
            assert mon.execute("select count(*) from public.calls").fetchone()[0] > calls
            deadline = time.monotonic() + 5
            while mon.execute("select count(*) from pg_stat_activity where application_name = %s",
                              (workload.APPLICATION_NAME,)).fetchone()[0]:
                assert time.monotonic() < deadline, "pgbench sessions left behind"
                time.sleep(0.05)
    finally:
        pg.drop_database(name)
