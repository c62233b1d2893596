"""Where each stage writes (the same paths as dvc.yaml's outs), relative to the project root."""

from __future__ import annotations

from pathlib import Path

SPLIT = Path("data/prepared/split.csv")
RUNS = Path("results/runs")
EVALUATION = Path("results/evaluation")
COMPARE = Path("results/compare")
FIGURES = Path("results/figures")
REPORT = Path("results/report.html")


def run_dir(backbone: str, method: str, seed: int, runs: Path = RUNS) -> Path:
    """The folder of one train-matrix run (``results/runs/<backbone>/<method>/seed<k>``)."""
    return Path(runs) / backbone / method / f"seed{seed}"
