"""Backup fixtures: ONE backup per server, shared by every test, and one restored copy of it.

``source_db`` is a clone of the clean seed; ``backup`` dumps it once (``exact_rows`` low enough
that the big tables are hashed by sampled key ranges, the small ones exactly); ``restored`` is
that backup restored into an empty database of the same test server (its roles are there
already). Tests that tamper with a restored copy clone ``restored`` (``tampered``); tests that
tamper with files copy the backup folder.
"""

from __future__ import annotations

import shutil
import uuid

import pytest

from pgrunbooks.backup.dump import backup_database
from pgrunbooks.backup.restore import restore_test
from pgrunbooks.sandbox import ADMIN_USER

#: tables above this many rows are hashed by sampled key ranges (calls and sms_messages at test scale)
EXACT_ROWS = 3000


@pytest.fixture(scope="session")
def source_db(pg, clean_template, _local_is_the_test_server):
    name = "bk_source"
    pg.drop_database(name)
    pg.create_database(name, template=clean_template)
    yield name
    pg.drop_database(name)


@pytest.fixture(scope="session")
def backup_root(pg, tmp_path_factory):
    root = tmp_path_factory.mktemp(f"backups-{pg.major}")
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def backup(pg, source_db, backup_root):
    """The one backup of ``source_db`` (as postgres: BYPASSRLS + pg_read_all_data, like Supabase's DBA)."""
    return backup_database(pg.conninfo(source_db), backup_dir=backup_root, jobs=2, exact_rows=EXACT_ROWS)


@pytest.fixture
def empty_db(pg):
    name = pg.create_database(f"bk_e_{uuid.uuid4().hex[:8]}")
    yield name
    pg.drop_database(name)


@pytest.fixture(scope="session")
def restored(pg, backup):
    """``backup`` restored into ``bk_restored`` on the same server, and the drill that did it."""
    name = "bk_restored"
    pg.drop_database(name)
    pg.create_database(name)
    drill = restore_test(backup.path, target=pg.conninfo(name, ADMIN_USER), jobs=2)
    yield name, drill
    pg.drop_database(name)


@pytest.fixture
def tampered(pg, restored):
    """A private clone of the restored copy, to break in one way."""
    name = pg.create_database(f"bk_t_{uuid.uuid4().hex[:8]}", template=restored[0])
    yield name
    pg.drop_database(name)


@pytest.fixture(scope="session", autouse=True)
def _local_is_the_test_server(pg):
    """``local`` (the history store's default) is this test server, never the project's sandbox."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PGRUNBOOKS_HOME", str(pg.home))
        yield
