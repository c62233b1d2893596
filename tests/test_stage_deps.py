"""dvc.yaml declares, for every stage, all the code that makes its outputs.

DVC re-runs a stage only when a declared dependency changes, so a `wing` module that a stage
imports but does not declare could change its results while `dvc repro` calls it up to date
and `dvc.lock` no longer matches the code. For each stage this imports, in a fresh
interpreter, what its notebook imports and what the stage runner (`python -m wing.stage`,
which writes the executed notebook) imports, and checks that every `wing` source file loaded
is a declared dependency or lies in a declared folder.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys

import nbformat
import pytest
import yaml

from conftest import ROOT

STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
LOADED = """
import json, os, sys
wing = os.path.abspath("wing") + os.sep
print(json.dumps(sorted(
    os.path.relpath(m.__file__) for m in list(sys.modules.values())
    if getattr(m, "__file__", None) and os.path.abspath(m.__file__).startswith(wing)
)))
"""


def notebook_of(stage: dict) -> str:
    return next(word for word in stage["cmd"].split() if word.startswith("notebooks/"))


def imports_of(notebook: str) -> list[str]:
    """Every import statement of the notebook's code cells."""
    statements = []
    for cell in nbformat.read(ROOT / notebook, as_version=4).cells:
        if cell.cell_type == "code":
            tree = ast.parse(cell.source)
            statements += [
                ast.unparse(node)
                for node in ast.walk(tree)
                if isinstance(node, ast.Import | ast.ImportFrom)
            ]
    return statements


def undeclared(loaded: list[str], deps: list[str]) -> list[str]:
    """The files of ``loaded`` that no path of ``deps`` (a file or a folder) covers."""
    folders = [d.rstrip("/") + "/" for d in deps]
    return [f for f in loaded if f not in deps and not any(f.startswith(d) for d in folders)]


def test_a_file_outside_the_declared_paths_is_found():
    deps = ["wing/training", "wing/io.py"]
    loaded = ["wing/training/loop.py", "wing/io.py", "wing/iox.py", "wing/training_extra.py"]
    assert undeclared(loaded, deps) == ["wing/iox.py", "wing/training_extra.py"]


@pytest.mark.parametrize("name", sorted(STAGES))
def test_every_wing_module_a_stage_loads_is_a_declared_dependency(name: str):
    stage = STAGES[name]
    code = "\n".join(["import wing.stage", *imports_of(notebook_of(stage)), LOADED])
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert "wing/stage.py" in loaded and len(loaded) > 5
    missing = undeclared(loaded, stage.get("deps", []))
    assert not missing, f"dvc.yaml, stage {name}: add to its deps {missing}"
