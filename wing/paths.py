"""Where each stage writes (the same paths as dvc.yaml's outs), relative to the project root."""

from __future__ import annotations

from pathlib import Path

SPLIT = Path("data/prepared/split.csv")
RUNS = Path("results/runs")
EVALUATION = Path("results/evaluation")
COMPARE = Path("results/compare")
EXTERNAL = Path("results/external")
LONGITUDINAL = Path("results/longitudinal")
FIGURES = Path("results/figures")
REPORT = Path("results/report.html")
PAPER = Path("results/paper")  # the manuscript's HTML site (wing.manuscript)
# Wall-clock measures: not DVC outputs (dvc.lock records the hash of every declared out, cached
# or not), so the hashed outputs stay byte-identical between two runs. Git-ignored.
TIMINGS = Path("results/timings")


def run_dir(backbone: str, method: str, seed: int, runs: Path = RUNS) -> Path:
    """The folder of one train-matrix run (``results/runs/<backbone>/<method>/seed<k>``)."""
    return Path(runs) / backbone / method / f"seed{seed}"


def timing_path(backbone: str, method: str, seed: int, timings: Path = TIMINGS) -> Path:
    """The wall-clock timing file of one run (``results/timings/<backbone>/<method>/
    seed<k>.json``), outside the run's hashed folder."""
    return Path(timings) / backbone / method / f"seed{seed}.json"


def enter_project(start: str | Path | None = None) -> Path:
    """Change to the project root (the nearest folder up holding ``dvc.yaml``) and return it.

    Stage notebooks call this first, so the same relative paths work under ``dvc repro``,
    in JupyterLab (which starts kernels in ``notebooks/``) and under nbval.
    """
    import os

    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "dvc.yaml").is_file():
            os.chdir(folder)
            return folder
    raise FileNotFoundError(f"no dvc.yaml in {here} or above: open the notebook inside the project")
