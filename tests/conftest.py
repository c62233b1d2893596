"""Shared fixtures: tiny canonical datasets made in code, and the real-data skip policy.

Real-data tests read the public datasets under ``../shared/data`` (``SHARED_DATA``; see
``data/README.md``) and request the ``shared_data`` fixture (or carry ``REAL_DATA``). The
policy: when ``../shared/data`` exists, every such test runs and a missing file inside it is
an error of that test, never a skip; when it is absent the tests are skipped with the reason
(``-ra`` lists skips in the summary), or fail when ``WING_REQUIRE_SHARED_DATA=1`` (CI).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from wing.data.format import Legend, write_legend, write_metadata, write_sample

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"
REQUIRE_SHARED_DATA = os.environ.get("WING_REQUIRE_SHARED_DATA", "") not in ("", "0")
TISSUES = ("granulation", "slough", "necrosis", "epithelium")


def make_dataset(root: Path, n_patients: int = 4, visits: int = 2, size: int = 32, seed: int = 0):
    """A small valid canonical dataset: a square wound with two tissue halves per image."""
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_patients):
        for v in range(visits):
            sample_id = f"P{p:02d}_V{v + 1}"
            image = (rng.random((size, size, 3)) * 255).astype(np.uint8)
            tissue = np.zeros((size, size), np.uint8)
            a, b = size // 4, 3 * size // 4
            tissue[a:b, a : size // 2] = 1 + (p + v) % 4
            tissue[a:b, size // 2 : b] = 1 + (p + v + 1) % 4
            write_sample(root, sample_id, image, (tissue > 0).astype(np.uint8), tissue)
            rows.append({"sample_id": sample_id, "patient_id": f"P{p:02d}", "visit_day": 14 * v})
    write_legend(root, Legend(TISSUES))
    write_metadata(root, pd.DataFrame(rows))
    return pd.DataFrame(rows)


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    root = tmp_path / "dataset"
    make_dataset(root)
    return root


def require_shared_data() -> Path:
    """``SHARED_DATA``, or skip the calling test (fail under ``WING_REQUIRE_SHARED_DATA=1``).

    Only the absence of the whole folder skips: a dataset, file or sub-folder missing inside
    an existing ``../shared/data`` makes the test fail where it reads it.
    """
    if SHARED_DATA.is_dir():
        return SHARED_DATA
    message = f"public data folder {SHARED_DATA} not found (see data/README.md)"
    if REQUIRE_SHARED_DATA:
        pytest.fail(f"{message}, and WING_REQUIRE_SHARED_DATA=1 requires it", pytrace=False)
    pytest.skip(f"{message}; WING_REQUIRE_SHARED_DATA=1 turns this skip into a failure")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The public datasets folder, under the skip policy of :func:`require_shared_data`."""
    return require_shared_data()


REAL_DATA = pytest.mark.usefixtures("shared_data")
"""Marks a real-data test (reads ``SHARED_DATA``): runs whenever ``../shared/data`` exists."""


def load_bench(name: str):
    """The benchmark ``bench/<name>.py`` as a module, with ``bench/`` on ``sys.path`` (where
    ``python bench/<name>.py`` finds its sibling ``_measure``)."""
    if str(ROOT / "bench") not in sys.path:
        sys.path.insert(0, str(ROOT / "bench"))
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------- the tiny-profile pipeline run (slow tests)


def sh(
    args: list[str], cwd: Path, check: bool = True, log: Path | None = None
) -> subprocess.CompletedProcess:
    """Run ``args`` in ``cwd`` as the Makefile would. ``log``: write the output to that file
    instead of capturing it, for a command that leaves daemons behind (``dvc queue start``'s
    workers inherit its output: captured through pipes, the call would wait for them)."""
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "PYTHONPATH": str(cwd),  # the copy's own `wing`, in dvc, papermill and the kernels
        "HF_HUB_OFFLINE": "1",
        "DVC_NO_ANALYTICS": "1",
        "PYTHONHASHSEED": "0",
    }
    if log is not None:
        with open(log, "a", encoding="utf-8") as out:
            done = subprocess.run(args, cwd=cwd, env=env, stdout=out, stderr=out, text=True)
        done.stdout = done.stderr = log.read_text(encoding="utf-8")
    else:
        done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    if check and done.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
        )
    return done


def set_params(project: Path, **changes) -> None:
    path = project / "params.yaml"
    params = yaml.safe_load(path.read_text())
    for dotted, value in changes.items():
        node = params
        *parents, key = dotted.split(".")
        for part in parents:
            node = node[part]
        node[key] = value
    path.write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.fixture(scope="session")
def project(tmp_path_factory) -> Path:
    """A fresh copy of the tracked project, on the tiny profile, after `dvc repro` (every
    stage, the manuscript included). Session-scoped: the pipeline tests and the manuscript's
    reader test share one run. The copy uses this checkout's set-up: its ``.venv`` (the
    running interpreter) and the manuscript's MathJax (``paper/node_modules``, linked)."""
    project = tmp_path_factory.mktemp("clone") / "wing"
    files = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    for name in files:
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, project / name)
    set_params(project, profile="tiny")
    if (ROOT / "paper" / "node_modules").is_dir():
        (project / "paper" / "node_modules").symlink_to(ROOT / "paper" / "node_modules")
    sh(["git", "init", "-q"], project)
    sh(
        [
            "git",
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-qam",
            "x",
            "--allow-empty",
        ],
        project,
        check=False,
    )
    sh(["git", "add", "-A"], project)
    sh(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "clone"], project)
    sh(["dvc", "repro"], project)
    return project


def pytest_report_header(config) -> str:
    found = "found" if SHARED_DATA.is_dir() else "ABSENT: real-data tests skip"
    required = " (required: WING_REQUIRE_SHARED_DATA=1)" if REQUIRE_SHARED_DATA else ""
    return f"wing public data: {SHARED_DATA} {found}{required}"


def cut_gradients(shared, representation, loss):
    """The network contract's cut property (wing.models.base), as two gradient lists on the
    ``shared`` parameters: ``loss``'s plain gradients, and those obtained by back-propagating
    it to the ``representation`` (a tensor or tuple) and from there into ``shared``. Equal
    when the representation is a cut. Parameters a route does not reach give zeros."""
    import torch

    z = tuple(representation) if isinstance(representation, list | tuple) else (representation,)
    grads = torch.autograd.grad(loss, z, retain_graph=True, allow_unused=True)
    reached = [(zk, gk) for zk, gk in zip(z, grads, strict=True) if gk is not None]
    through = torch.autograd.grad(
        [zk for zk, _ in reached],
        shared,
        grad_outputs=[gk for _, gk in reached],
        retain_graph=True,
        allow_unused=True,
    )
    plain = torch.autograd.grad(loss, shared, retain_graph=True, allow_unused=True)
    zero = lambda p, g: torch.zeros_like(p) if g is None else g  # noqa: E731
    return (
        [zero(p, g) for p, g in zip(shared, plain, strict=True)],
        [zero(p, g) for p, g in zip(shared, through, strict=True)],
    )
