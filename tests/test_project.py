"""The project's own promises: pyproject and environment.yml agree, the README's commands exist."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def requirement_bounds(requirements: list[str]) -> dict[str, str]:
    bounds = {}
    for requirement in requirements:
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)(?:\[[a-z,]+\])?\s*(>=\s*[\d.]+)?", requirement.strip())
        assert match, f"unexpected requirement {requirement!r}"
        bounds[match.group(1).lower()] = (match.group(2) or "").replace(" ", "")
    return bounds


def test_environment_yml_lists_the_same_packages_and_bounds():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = requirement_bounds(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        wanted.update(requirement_bounds(extra))
    wanted["python"] = ">=" + project["requires-python"].removeprefix(">=")
    listed = [
        line.strip()[2:]
        for line in (ROOT / "environment.yml").read_text().splitlines()
        if line.strip().startswith("- ") and not line.strip().startswith("- conda-forge")
    ]
    assert requirement_bounds(listed) == wanted


def test_readme_first_commands_install_run_and_test():
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```(?:bash|sh)\n(.*?)```", readme, flags=re.S)
    assert "pip install" in blocks[0] and "python app.py" in blocks[0]
    assert 'pip install -e ".[test]"' in blocks[1] and "pytest" in blocks[1]
    ci = (ROOT / ".ci" / "run").read_text()
    assert 'pip install --quiet -e ".[test]"' in ci and "pytest" in ci
