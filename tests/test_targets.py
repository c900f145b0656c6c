"""Targets: names resolve without connecting and without passwords.

(``pgrunbooks.notebook.start`` and its sessions are tested in ``tests/notebook/test_session.py``.)"""

from __future__ import annotations

import pytest

from pgrunbooks.errors import TargetError
from pgrunbooks.redact import redact
from pgrunbooks.targets import resolve


# --------------------------------------------------------------------------------------
# Resolution: no connection, no password
# --------------------------------------------------------------------------------------
def test_local_targets_resolve_to_the_sandbox_socket(pg, monkeypatch):
    monkeypatch.setenv("PGRUNBOOKS_HOME", str(pg.home))
    target = resolve("local:somedb")
    assert target.kind == "local" and target.dbname == "somedb"
    assert str(pg.home) in target.conninfo
    assert resolve("local").dbname == "victorysync"


@pytest.mark.parametrize(
    "spec, message",
    [
        ("env:PGRB_UNSET_VAR", "is not set"),
        ("local; drop table x", "unknown target"),
        ("local:x;drop", "invalid database name"),
        ("service:nope-nope", "no libpq service named 'nope-nope'"),
        ("", "empty"),
    ],
)
def test_bad_target_names_are_usage_errors(spec, message, monkeypatch, tmp_path):
    monkeypatch.delenv("PGRB_UNSET_VAR", raising=False)
    monkeypatch.setenv("PGSERVICEFILE", str(tmp_path / "pg_service.conf"))
    with pytest.raises(TargetError, match=message) as caught:
        resolve(spec)
    assert caught.value.exit_code == 3


def test_a_password_in_the_target_is_refused_and_redacted():
    with pytest.raises(TargetError, match="must not carry a password") as caught:
        resolve("postgresql://u:Pa55-in-param@db.example.com/app")
    assert "Pa55-in-param" not in str(caught.value)
    assert "Pa55-in-param" not in redact("connecting with Pa55-in-param")


def test_env_target_password_is_redacted_everywhere(monkeypatch):
    monkeypatch.setenv("PGRB_T_SECRET_DSN", "host=db.example.com user=u password=S3cret-from-env dbname=app")
    target = resolve("env:PGRB_T_SECRET_DSN")
    assert str(target) == "env:PGRB_T_SECRET_DSN"
    assert redact("oops S3cret-from-env oops") == "oops ******** oops"


def test_service_target_names_the_service(tmp_path, monkeypatch):
    conf = tmp_path / "pg_service.conf"
    conf.write_text("[victorysync-prod]\nhost=db.example.com\ndbname=postgres\nuser=postgres\n")
    monkeypatch.setenv("PGSERVICEFILE", str(conf))
    target = resolve("service:victorysync-prod")
    assert target.kind == "service" and "service=victorysync-prod" in target.conninfo
