"""The set-up files agree: pyproject, constraints, environment.yml, Makefile, CI."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONDA_NAMES = {"pytorch": "torch"}  # conda name -> PyPI name
NOT_PACKAGES = {"python", "pip"}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pyproject_packages() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        specs += extra
    return {_norm(re.split(r"[<>=!~\[ ;]", spec, maxsplit=1)[0]) for spec in specs}


def _dependency_lines() -> list[str]:
    text = (ROOT / "environment.yml").read_text()
    return text.split("\ndependencies:\n", 1)[1].splitlines()


def _environment_packages() -> set[str]:
    names = set()
    for line in _dependency_lines():
        match = re.match(r"^\s+- ([A-Za-z0-9_.\-]+)\s*(?:[=<>].*)?$", line)
        if match and not line.strip().startswith("- -e"):
            name = CONDA_NAMES.get(match[1], match[1])
            if name not in NOT_PACKAGES:
                names.add(_norm(name))
    return names


def _constraints() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[_norm(name)] = version
    return pins


def test_environment_yml_and_pyproject_name_the_same_packages():
    env, project = _environment_packages(), _pyproject_packages()
    assert env == project, f"only in environment.yml: {env - project}; only in pyproject: {project - env}"


def test_every_direct_dependency_is_pinned_and_torch_exactly():
    pins = _constraints()
    missing = _pyproject_packages() - set(pins)
    assert not missing, f"not pinned in constraints.txt: {missing}"
    assert pins["torch"] == "2.13.0"


def test_environment_yml_versions_match_the_constraints():
    pins = _constraints()
    for line in _dependency_lines():
        match = re.match(r"^\s+- ([A-Za-z0-9_.\-]+)=([0-9][^\s]*)$", line)
        if match and match[1] not in NOT_PACKAGES:
            name = _norm(CONDA_NAMES.get(match[1], match[1]))
            assert pins[name] == match[2], f"{name}: environment.yml {match[2]}, constraints {pins[name]}"


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme.split("\n## ")[0], "README's top must show `make test`"
    assert "make lab" in readme.split("\n## ")[0], "README's top must show `make lab`"
    assert re.search(r"^make test\b", (ROOT / ".ci/run").read_text(), flags=re.MULTILINE)
