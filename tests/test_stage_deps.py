"""dvc.yaml declares, for every stage, all the code that makes its outputs.

DVC re-runs a stage only when a declared dependency changes, so a `wing` module that a stage
uses but does not declare could change its results while `dvc repro` calls it up to date
and `dvc.lock` no longer matches the code. For each stage this follows, from the import
statements of its notebook and from the stage runner (`python -m wing.stage`, which writes
the executed notebook), every `wing` import statement of every module reached, at the top of
a module or inside a function (a lazy import runs while the stage runs), and checks that
each module's file is a declared dependency or lies in a declared folder. The source is
read, not imported: the closure holds every module the stage can load, which is what DVC
must watch (`wing` has no relative or dynamic imports).
"""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import pytest
import yaml

from conftest import ROOT

STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]


def notebook_of(stage: dict) -> str:
    return next(word for word in stage["cmd"].split() if word.startswith("notebooks/"))


def module_file(name: str, root: Path = ROOT) -> Path | None:
    """The source file of module ``name`` (``wing.a.b``) under ``root``, or None."""
    base = root.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported(tree: ast.AST, root: Path = ROOT) -> set[str]:
    """The ``wing`` modules that the import statements anywhere in ``tree`` load, with the
    packages above them (``from wing.a import b`` loads ``wing``, ``wing.a`` and, when it is
    a module, ``wing.a.b``)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {
                f"{node.module}.{alias.name}"
                for alias in node.names
                if module_file(f"{node.module}.{alias.name}", root)
            }
    found = set()
    for name in names:
        parts = name.split(".")
        if parts[0] == "wing":
            found |= {".".join(parts[: i + 1]) for i in range(len(parts))}
    return {name for name in found if module_file(name, root)}


def closure(start: set[str], root: Path = ROOT) -> list[str]:
    """The files of the modules ``start`` loads, transitively, relative to ``root``."""
    seen: set[str] = set()
    pending = set(start)
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        source = module_file(name, root)
        pending |= imported(ast.parse(source.read_text(encoding="utf-8")), root) - seen
    return sorted(str(module_file(name, root).relative_to(root)) for name in seen)


def notebook_modules(notebook: str) -> set[str]:
    """The ``wing`` modules the notebook's code cells import."""
    found = set()
    for cell in nbformat.read(ROOT / notebook, as_version=4).cells:
        if cell.cell_type == "code":
            found |= imported(ast.parse(cell.source))
    return found


def undeclared(loaded: list[str], deps: list[str]) -> list[str]:
    """The files of ``loaded`` that no path of ``deps`` (a file or a folder) covers."""
    folders = [d.rstrip("/") + "/" for d in deps]
    return [f for f in loaded if f not in deps and not any(f.startswith(d) for d in folders)]


def test_the_closure_follows_lazy_imports_and_parent_packages(tmp_path: Path):
    (tmp_path / "wing" / "a").mkdir(parents=True)
    (tmp_path / "wing" / "__init__.py").write_text("")
    (tmp_path / "wing" / "a" / "__init__.py").write_text("")
    (tmp_path / "wing" / "a" / "b.py").write_text("def f():\n    import wing.c\n")
    (tmp_path / "wing" / "c.py").write_text("import numpy\n")
    (tmp_path / "wing" / "unused.py").write_text("")
    start = imported(ast.parse("from wing.a import b"), tmp_path)
    assert closure(start, tmp_path) == [
        "wing/__init__.py",
        "wing/a/__init__.py",
        "wing/a/b.py",
        "wing/c.py",
    ]


def test_a_file_outside_the_declared_paths_is_found():
    deps = ["wing/training", "wing/io.py"]
    loaded = ["wing/training/loop.py", "wing/io.py", "wing/iox.py", "wing/training_extra.py"]
    assert undeclared(loaded, deps) == ["wing/iox.py", "wing/training_extra.py"]


@pytest.mark.parametrize("name", sorted(STAGES))
def test_every_wing_module_a_stage_loads_is_a_declared_dependency(name: str):
    stage = STAGES[name]
    loaded = closure({"wing.stage"} | notebook_modules(notebook_of(stage)))
    assert "wing/stage.py" in loaded and len(loaded) > 5
    missing = undeclared(loaded, stage.get("deps", []))
    assert not missing, f"dvc.yaml, stage {name}: add to its deps {missing}"
