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


def test_every_data_file_of_the_package_is_installed(project):
    """Templates, SQL files… under lib/pgrunbooks/ are matched by package-data, so a wheel
    (not only the editable install) has the report templates and every check's SQL."""
    globs = tomllib.loads((project / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["pgrunbooks"]
    package = project / "lib" / "pgrunbooks"
    data = {p for p in package.rglob("*") if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts}
    installed = {p for pattern in globs for p in package.glob(pattern)}
    assert data, "the package has data files (report templates, SQL)"
    assert sorted(str(p.relative_to(package)) for p in data - installed) == []
    assert package / "engine" / "templates" / "report.html" in installed
