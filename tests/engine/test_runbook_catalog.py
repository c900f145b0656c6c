"""Which runbooks exist (pgrunbooks.engine.catalog): ``pgrunbooks list`` and name lookup. In-process, no kernel."""

from __future__ import annotations

import json
import re

from pgrunbooks import cli

def test_unknown_runbook_lists_close_matches(in_process, capsys):  # noqa: F811
    assert cli.main(["run", "fixtures/findngs"]) == 3
    err = capsys.readouterr().err
    assert "unknown runbook 'fixtures/findngs'" in err and "did you mean: fixtures/findings" in err
    assert cli.main(["run", "nonexistent_thing"]) == 3


def test_list_shows_group_title_purpose_and_mutates(in_process, capsys):  # noqa: F811
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"fixtures\s+fixtures/required\s+yes\s+Required parameter\s+Test fixture", out), out
    assert re.search(r"fixtures\s+fixtures/findings\s+no\s+Findings with a chart", out)
    assert cli.main(["list", "--json"]) == 0
    items = json.loads(capsys.readouterr().out)
    assert {i["name"] for i in items} >= {"fixtures/findings", "fixtures/failing", "fixtures/empty"}
