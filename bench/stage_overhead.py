"""Benchmark: the fixed cost of one notebook stage, against the quick profile's wall time.

Question (issue 11, "Performance"): every DVC stage runs a notebook through papermill in a
fresh ``wing`` kernel (``wing/stage.py``). What does a stage cost before it does any work,
and what share of the quick run do those fixed costs take? Target: fixed cost x stages
<= 10 % of the quick run's wall time (``--quick-wall-seconds``, default 861 s: the measured
14 min 21 s).

A trivial notebook per stage: a ``parameters`` cell and one cell holding that stage
notebook's import statements (``trivial_<stage>``), and one holding the union of every stage's
imports (an upper bound for any one stage). Subjects, timed in interleaved rounds in a
shuffled order (``bench/_measure.py``):

- ``stage:<name>``: ``python -m wing.stage trivial_<name>.ipynb out.ipynb``, a subprocess, as
  dvc runs that stage: interpreter, papermill, kernel start, the stage's imports, kernel
  shutdown, the stripped notebook written. This is the stage's fixed cost; the pipeline's is
  the sum over stages, each times the number of runs ``dvc repro`` makes of it.
- ``papermill``: ``papermill.execute_notebook(..., kernel_name="wing")`` on the union
  notebook from this process (papermill already imported): kernel start, imports, shutdown.
- ``script``: the union's imports in a fresh interpreter (``python -c``), which also times
  the imports from inside (``import_seconds``): what a stage would cost as a plain script.

The notebook overhead is ``papermill - script`` per round: what the kernel adds. Stages:
dvc.yaml's, the train matrix expanded from params.yaml's top level (what ``dvc repro``
runs on the quick profile). Every subprocess and the kernel start in the project root, so
they import this checkout's ``wing``. Not measured: dvc's own work per stage (hashing deps
and outs, the lock file).

    python bench/stage_overhead.py [--rounds 3] [--warmup 1] [--quick-wall-seconds 861]
"""

from __future__ import annotations

import argparse
import ast
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import nbformat
import papermill
import torch
import yaml
from _measure import interleaved_times, quartiles, record, run_header

from wing.stage import KERNEL

ROOT = Path(__file__).resolve().parent.parent
TARGET_FRACTION = 0.10  # fixed cost x stages <= 10 % of the quick run
QUICK_WALL_SECONDS = 861.0  # the quick profile's measured dvc repro -f: 14 min 21 s
NOTEBOOK = re.compile(r"notebooks/\S+\.ipynb")
# Subprocesses as the Makefile runs the pipeline: offline, fixed hash seed.
ENVIRONMENT = {"HF_HUB_OFFLINE": "1", "DVC_NO_ANALYTICS": "1", "PYTHONHASHSEED": "0"}


def stage_notebooks(dvc_yaml: Path) -> dict[str, str]:
    """Each dvc.yaml stage's notebook (the first ``notebooks/*.ipynb`` of its ``cmd``)."""
    stages = yaml.safe_load(dvc_yaml.read_text(encoding="utf-8"))["stages"]
    found = {}
    for name, stage in stages.items():
        match = NOTEBOOK.search(str(stage.get("cmd", "")))
        if match:
            found[name] = match.group(0)
    return found


def lookup(params: dict, value: Any) -> list:
    """A matrix axis: a list as written, or ``${dotted.key}`` read from params.yaml."""
    if isinstance(value, str):
        match = re.fullmatch(r"\$\{([\w.]+)\}", value.strip())
        if not match:
            raise ValueError(f"matrix axis {value!r}: neither a list nor ${{key}}")
        for part in match.group(1).split("."):
            params = params[part]
        value = params
    return list(value)


def stage_counts(dvc_yaml: Path, params_yaml: Path) -> dict[str, int]:
    """How many times ``dvc repro`` runs each stage: 1, or the product of its matrix axes
    (read from params.yaml's top level, as dvc.yaml reads them)."""
    stages = yaml.safe_load(dvc_yaml.read_text(encoding="utf-8"))["stages"]
    params = yaml.safe_load(params_yaml.read_text(encoding="utf-8"))
    return {
        name: math.prod(len(lookup(params, axis)) for axis in stage.get("matrix", {}).values())
        for name, stage in stages.items()
    }


def import_statements(notebooks: Sequence[Path]) -> list[str]:
    """The top-level import statements of the notebooks' code cells, each once, in order."""
    statements: list[str] = []
    for path in notebooks:
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type != "code":
                continue
            source = "\n".join(
                line
                for line in cell.source.splitlines()
                if not line.lstrip().startswith(("%", "!"))
            )
            for node in ast.parse(source).body:
                if isinstance(node, ast.Import | ast.ImportFrom):
                    statement = ast.unparse(node)
                    if statement not in statements:
                        statements.append(statement)
    return statements


def trivial_notebook(imports: Sequence[str], path: Path) -> None:
    """A parameters cell and the imports: a stage that does nothing else."""
    parameters = nbformat.v4.new_code_cell("seed = 0", metadata={"tags": ["parameters"]})
    notebook = nbformat.v4.new_notebook(
        cells=[parameters, nbformat.v4.new_code_cell("\n".join(imports))],
        metadata={"kernelspec": {"name": KERNEL, "display_name": KERNEL, "language": "python"}},
    )
    nbformat.write(notebook, path)


def find_kernel(name: str) -> dict[str, Any]:
    """The kernel's spec as jupyter_client finds it from this interpreter, or exit saying so."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    manager = KernelSpecManager()
    try:
        spec = manager.get_kernel_spec(name)
    except NoSuchKernel:
        raise SystemExit(
            f"kernel {name!r} not found from {sys.executable} (found: "
            f"{sorted(manager.find_kernel_specs())}); `make` registers it inside .venv"
        ) from None
    return {"name": name, "resource_dir": spec.resource_dir, "argv": spec.argv}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="bench/results/stage_overhead.json")
    parser.add_argument("--dvc-yaml", default="dvc.yaml")
    parser.add_argument("--params", default="params.yaml", help="the train matrix's axes")
    parser.add_argument(
        "--quick-wall-seconds",
        type=float,
        default=QUICK_WALL_SECONDS,
        help="wall time of dvc repro on the quick profile (default: 861 = 14 min 21 s)",
    )
    parser.add_argument("--project", default=str(ROOT), help="where stages run (imports wing)")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.warmup < 0 or args.quick_wall_seconds <= 0:
        parser.error("--rounds at least 1, --warmup at least 0, --quick-wall-seconds positive")
    return args


def main(argv: Sequence[str] | None = None) -> dict:
    args = parse_args(argv)
    wall_start = time.perf_counter()
    load_start = list(os.getloadavg())  # 1, 5, 15 min: other work on the machine
    project = Path(args.project).resolve()
    kernel = find_kernel(KERNEL)
    notebooks = stage_notebooks(Path(args.dvc_yaml))
    counts = stage_counts(Path(args.dvc_yaml), Path(args.params))
    imports = import_statements([project / path for path in dict.fromkeys(notebooks.values())])
    stage_imports = {name: import_statements([project / path]) for name, path in notebooks.items()}
    environment = {**os.environ, **ENVIRONMENT}
    imports_seconds: list[float] = []

    with tempfile.TemporaryDirectory(prefix="wing-stage-overhead-") as folder:
        notebook = Path(folder) / "trivial.ipynb"
        trivial_notebook(imports, notebook)
        for name, statements in stage_imports.items():
            trivial_notebook(statements, Path(folder) / f"trivial_{name}.ipynb")

        def stage_of(name: str):
            def stage() -> None:
                command = [sys.executable, "-m", "wing.stage", f"{folder}/trivial_{name}.ipynb",
                           f"{folder}/stage_{name}.ipynb"]  # fmt: skip
                subprocess.run(
                    command, cwd=project, env=environment, check=True, capture_output=True
                )

            return stage

        def in_papermill() -> None:
            papermill.execute_notebook(
                str(notebook),
                f"{folder}/papermill.ipynb",
                kernel_name=KERNEL,
                progress_bar=False,
                cwd=str(project),
            )

        def script() -> None:
            code = "\n".join(
                ["import time", "_start = time.perf_counter()", *imports,
                 "print(time.perf_counter() - _start)"]
            )  # fmt: skip
            done = subprocess.run(
                [sys.executable, "-c", code],
                cwd=project,
                env=environment,
                check=True,
                capture_output=True,
                text=True,
            )
            imports_seconds.append(float(done.stdout.strip().splitlines()[-1]))

        steps = {f"stage:{name}": stage_of(name) for name in notebooks}
        steps |= {"papermill": in_papermill, "script": script}
        times = interleaved_times(steps, args.rounds, args.warmup, args.seed, torch.device("cpu"))
    in_process = imports_seconds[args.warmup :]  # one per round, the warm-up rounds first

    overhead_rounds = [p - s for p, s in zip(times["papermill"], times["script"], strict=True)]
    stages = sum(counts[name] for name in notebooks)
    per_stage = {name: statistics.median(times[f"stage:{name}"]) for name in notebooks}
    fixed_total = sum(per_stage[name] * counts[name] for name in notebooks)
    overhead = statistics.median(overhead_rounds)

    def share(seconds: float, total: float | None = None) -> dict[str, Any]:
        total = seconds * stages if total is None else total
        fraction = total / args.quick_wall_seconds
        return {
            "per_stage_seconds": seconds,
            "total_seconds": total,
            "fraction": fraction,
            "target_fraction": TARGET_FRACTION,
            "target_met": bool(fraction <= TARGET_FRACTION),
        }

    subjects = {
        name: {"median_seconds": statistics.median(series), "quartiles": quartiles(series),
               "seconds": series}
        for name, series in times.items()
    }  # fmt: skip
    subjects["script"]["imports_median_seconds"] = statistics.median(in_process)
    subjects["script"]["imports_seconds"] = in_process
    result = {
        **run_header("stage_overhead", torch.device("cpu"), args),
        "python": sys.executable,
        "kernel": kernel,
        "project": str(project),
        "stage_notebooks": notebooks,
        "imports": imports,
        "stage_counts": {name: counts[name] for name in notebooks},
        "stages": stages,
        "quick_wall_seconds": args.quick_wall_seconds,
        "subjects": subjects,
        "notebook_overhead_seconds": overhead_rounds,
        "per_stage_fixed_seconds": per_stage,
        "fixed_cost": share(fixed_total / stages, fixed_total),
        "notebook_overhead": share(overhead),
        "what": {
            "fixed_cost": "sum over dvc.yaml's stages of the median of `python -m wing.stage` "
            "on a notebook holding only that stage's imports, x the runs dvc repro makes of "
            "it (per_stage_seconds: that sum / stages)",
            "notebook_overhead": "median over rounds of papermill - script (kernel and "
            "notebook machinery beyond the same imports in a fresh interpreter), x stages",
            "not_measured": "dvc's own per-stage work (hashing deps and outs, dvc.lock)",
        },
    }
    return record(result, args.out, format_table(result), wall_start, load_start)


def format_table(result: dict) -> str:
    """The result as a Markdown table (the one bench/README.md records)."""
    s = result["subjects"]
    lines = [
        "| measure | seconds | × stages | share of the quick run | ≤ 10 % |",
        "|---|---:|---:|---:|---|",
    ]
    for name in ("fixed_cost", "notebook_overhead"):
        entry = result[name]
        lines.append(
            f"| {name.replace('_', ' ')} | {entry['per_stage_seconds']:.2f} "
            f"| {result['stages']} | {entry['fraction']:.1%} "
            f"| {'met' if entry['target_met'] else 'not met'} |"
        )
    lines.append(
        "\nper stage (median s): "
        + ", ".join(f"{k} {v:.2f}" for k, v in result["per_stage_fixed_seconds"].items())
    )
    lines.append(
        f"per subject (median s): papermill "
        f"{s['papermill']['median_seconds']:.2f}, script {s['script']['median_seconds']:.2f} "
        f"(imports in-process {s['script']['imports_median_seconds']:.2f}); stages "
        + ", ".join(f"{k} {v}" for k, v in result["stage_counts"].items())
    )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
