"""Planted faults: named and chosen like the docs say, each planted by its own SQL, really there in
the faults database and really absent from the clean one; the cluster fault is reverted, also by a
seed that does not ask for it."""

from __future__ import annotations

import pytest
from seed_helpers import scalar

from pgrunbooks.errors import UsageError
from pgrunbooks.seed import (
    CLUSTER_FAULTS,
    DATABASE_FAULTS,
    FAULTS,
    Fault,
    UnknownFault,
    apply_faults,
    parse_faults,
    revert_faults,
    seed,
)


def test_unknown_fault_names_are_rejected_with_the_valid_ones(pg, fresh_db):
    with pytest.raises(UnknownFault) as caught:
        parse_faults("orphaned_rows,no_such_fault")
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, UsageError) and caught.value.exit_code == 3  # CLI: bad usage
    message = str(caught.value)
    assert "no_such_fault" in message and "orphaned_rows" in message and "anon_grant" in message
    # nothing is touched before the name is checked
    with pg.connect(fresh_db) as conn:
        with pytest.raises(UnknownFault):
            seed(conn, faults="typo_fault")
        assert scalar(conn, "select to_regclass('public.calls')") is None


def test_fault_specs():
    assert parse_faults("all") == list(FAULTS)
    assert parse_faults("none") == [] == parse_faults("") == parse_faults(None)
    assert parse_faults("unused_index, leaky_policy") == ["leaky_policy", "unused_index"]
    assert parse_faults(["dead_tuples", "orphaned_rows"]) == ["orphaned_rows", "dead_tuples"]
    assert parse_faults("all,unused_index") == list(FAULTS)
    assert set(DATABASE_FAULTS) | set(CLUSTER_FAULTS) == set(FAULTS)
    assert CLUSTER_FAULTS == ("extra_superuser",)
    for fault in FAULTS.values():
        assert fault.finds and fault.description and fault.scope in ("database", "cluster")
        assert (fault.revert is not None) == (fault.scope == "cluster")


@pytest.mark.parametrize("name", DATABASE_FAULTS)
def test_planted_fault_is_present_in_the_faults_db(pg, faults_db, name):
    with pg.connect(faults_db) as conn:
        assert FAULTS[name].present(conn)


@pytest.mark.parametrize("name", list(FAULTS))
def test_no_fault_is_present_in_the_clean_db(pg, clean_db, name):
    with pg.connect(clean_db) as conn:
        assert not FAULTS[name].present(conn)


def test_cluster_fault_is_applied_and_reverted(pg, fresh_db):
    with pg.connect(fresh_db) as conn, pg.connect("postgres") as other:
        try:
            assert apply_faults(conn, "extra_superuser") == ["extra_superuser"]
            assert FAULTS["extra_superuser"].present(conn)
            assert FAULTS["extra_superuser"].present(other)  # every database sees it
            assert scalar(other, "select rolsuper and rolcanlogin from pg_roles where rolname = 'legacy_admin'")
        finally:
            revert_faults(conn, "extra_superuser")
        assert not FAULTS["extra_superuser"].present(conn)
        assert not FAULTS["extra_superuser"].present(other)


def test_cluster_fault_is_planted_once_however_often_it_is_applied(pg, fresh_db):
    fault = FAULTS["extra_superuser"]
    with pg.connect(fresh_db) as conn:
        try:
            fault.apply(conn)
            fault.apply(conn)  # the role exists already: no "role already exists" error
            assert scalar(conn, "select count(*) from pg_roles where rolname = 'legacy_admin'") == 1
        finally:
            revert_faults(conn, "extra_superuser")
        assert not fault.present(conn)


def test_a_seed_without_the_cluster_fault_reverts_it(pg, fresh_db):
    with pg.connect(fresh_db) as conn, pg.connect("postgres") as other:
        try:
            apply_faults(conn, "extra_superuser")
            assert FAULTS["extra_superuser"].present(other)
            result = seed(conn, scale=0.02, faults="none")
            assert result.faults == ()
            assert not FAULTS["extra_superuser"].present(other)
            assert scalar(other, "select array_agg(rolname) from pg_roles where rolsuper") == ["supabase_admin"]
        finally:
            revert_faults(conn, CLUSTER_FAULTS)


def test_each_fault_plants_itself_and_nothing_else(pg, clean_clone):
    with pg.connect(clean_clone) as conn:
        for i, name in enumerate(DATABASE_FAULTS):
            assert not FAULTS[name].present(conn), f"{name} before it was planted"
            FAULTS[name].apply(conn)
            assert FAULTS[name].present(conn), name
            planted_too = [later for later in DATABASE_FAULTS[i + 1:] if FAULTS[later].present(conn)]
            assert planted_too == [], f"planting {name} planted {planted_too}"
        # applying again plants nothing twice
        assert apply_faults(conn, DATABASE_FAULTS) == list(DATABASE_FAULTS)
        assert scalar(conn, "select count(*) from pg_policies where policyname = 'billing_records_read_all'") == 1


def test_a_fault_entry_needs_its_sql_files_and_a_reason_for_its_hook():
    entry = dict(scope="database", finds=("dead_tuples",), summary="s", description="d", why="w")
    with pytest.raises(ValueError, match="no_such_fault.sql is missing"):
        Fault(name="no_such_fault", **entry)
    with pytest.raises(ValueError, match="a hook needs its reason"):
        Fault(name="dead_tuples", hook=lambda conn, fault, values: None, **entry)
    with pytest.raises(ValueError, match="scope"):
        Fault(name="dead_tuples", **{**entry, "scope": "table"})
