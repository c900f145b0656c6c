"""The project installs the same things however it is installed, and CI runs the README's command."""

from __future__ import annotations

import re
import tomllib

import yaml


def _name_and_spec(requirement: str) -> tuple[str, str]:
    match = re.match(r"^\s*([A-Za-z0-9_.-]+)(\[[^\]]*\])?\s*(.*)$", requirement)
    name = match.group(1).lower().replace("_", "-")
    return ("pyyaml" if name == "pyyaml" else name), match.group(3).replace(" ", "")


def test_environment_yml_matches_pyproject(project):
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())["project"]
    wanted = dict(_name_and_spec(r) for r in pyproject["dependencies"] + pyproject["optional-dependencies"]["test"])
    env = yaml.safe_load((project / "environment.yml").read_text())["dependencies"]
    conda = [d for d in env if isinstance(d, str)]
    pip = next(d["pip"] for d in env if isinstance(d, dict))
    listed = dict(spec for spec in map(_name_and_spec, conda + pip) if spec[0] not in ("python", "pip"))
    assert listed == wanted


def test_ci_runs_exactly_the_readme_test_command(project):
    readme = (project / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
    ci = [line for line in (project / ".ci/run").read_text().splitlines() if line and not line.startswith("#")]
    assert ci[-1] == "make test"
