"""environment.yml (conda) and pyproject.toml (pip) describe the same pinned environment."""

from __future__ import annotations

import tomllib

import yaml

from conftest import ROOT


def test_conda_and_pip_list_the_same_packages():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pip = set(project["dependencies"]) | set(project["optional-dependencies"]["dev"])
    conda = yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"]
    conda_pip = next(item["pip"] for item in conda if isinstance(item, dict))
    assert set(conda_pip) == pip
    assert "python=3.11" in conda
    assert project["requires-python"] == "==3.11.*"
    assert all("==" in requirement for requirement in pip), "every package is pinned"
