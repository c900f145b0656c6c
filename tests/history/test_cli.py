"""``pgrunbooks history``: migrate (creating the sandbox database), capture, seed-synthetic, status."""

from __future__ import annotations

import json
import uuid

from pgrunbooks import cli


def test_history_commands_end_to_end(first_pg, clean_db, monkeypatch, capsys):
    pg = first_pg
    monkeypatch.setenv("PGRUNBOOKS_HOME", str(pg.home))  # `local` is this test server
    name = f"hist_{uuid.uuid4().hex[:8]}"
    history = f"local:{name}"
    try:
        assert cli.main(["history", "migrate", "--history", history]) == 0
        assert "applied now: 001" in capsys.readouterr().out
        assert cli.main(["history", "migrate", "--history", history]) == 0
        assert "nothing (up to date)" in capsys.readouterr().out
        assert cli.main(["history", "capture", "--history", history, "--target", f"local:{clean_db}"]) == 0
        assert cli.main(["history", "seed-synthetic", "--history", history, "--target", f"local:{clean_db}",
                         "--days", "40"]) == 0
        assert "40 synthetic daily snapshots written" in capsys.readouterr().out
        assert cli.main(["history", "status", "--history", history, "--format", "json"]) == 0
        status = json.loads(capsys.readouterr().out)
        assert status["schema_version"] == 1
        assert status["targets"] == [{"target": f"local:{clean_db}", "snapshots": 41, "synthetic": 40,
                                      "first_day": status["targets"][0]["first_day"],
                                      "last_day": status["targets"][0]["last_day"], "runs": 40, "drills": status["targets"][0]["drills"]}]
        # synthetic history is for the sandbox only; a bad number of days is bad usage too
        assert cli.main(["history", "seed-synthetic", "--history", history, "--target", pg.conninfo(clean_db)]) == 3
        assert "for the sandbox only" in capsys.readouterr().err
        assert cli.main(["history", "seed-synthetic", "--history", history, "--days", "0"]) == 3
    finally:
        pg.drop_database(name)
