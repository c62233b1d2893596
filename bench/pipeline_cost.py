"""Benchmark: what the whole pipeline costs, and whether a forced run changes any output.

Questions (issue 11, "Whole-pipeline cost" and "Reproducible to the byte"): the wall time of
``dvc repro -f`` (every stage, from the prepared data to the report) and of a plain
``dvc repro`` right after it (nothing to do: what a user pays to learn that everything is up
to date), on this machine, in the project as it stands; and, from ``dvc.lock`` before and
after the forced run, which stages' outputs changed (none, when the code and params did not
change since the lock was written: the byte audit of the README's "How to audit").

It runs the pipeline for real: about 15 minutes on 2 cores for the quick profile. Run it with
nothing else on the machine, in a clean tree (uncommitted outputs would be overwritten). The
report shows the recorded numbers (``bench/results/pipeline_cost.json``), so the report and
the later stages run once more when the file changes.

    python bench/pipeline_cost.py [--out bench/results/pipeline_cost.json]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
# Subprocesses as the Makefile runs the pipeline: offline, fixed hash seed.
ENVIRONMENT = {"HF_HUB_OFFLINE": "1", "DVC_NO_ANALYTICS": "1", "PYTHONHASHSEED": "0"}


def out_hashes(lock_text: str) -> dict[str, dict[str, str]]:
    """Each stage's outputs in a dvc.lock, path -> md5 (directories: their ``.dir`` hash)."""
    stages = yaml.safe_load(lock_text).get("stages", {}) if lock_text.strip() else {}
    return {
        stage: {out["path"]: out["md5"] for out in entry.get("outs", [])}
        for stage, entry in stages.items()
    }


def changed_outputs(before: str, after: str) -> dict[str, list[str]]:
    """Per stage, the outputs whose hash differs between two dvc.lock texts (a stage absent
    from ``before`` counts every output as changed)."""
    old, new = out_hashes(before), out_hashes(after)
    changed = {}
    for stage, outs in new.items():
        differ = sorted(p for p, md5 in outs.items() if old.get(stage, {}).get(p) != md5)
        if differ:
            changed[stage] = differ
    return changed


def timed_run(command: list[str], project: Path) -> tuple[float, str]:
    """Run ``command`` in ``project``; its wall time and output (stops on failure)."""
    start = time.perf_counter()
    done = subprocess.run(
        command, cwd=project, env={**os.environ, **ENVIRONMENT}, capture_output=True, text=True
    )
    seconds = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed in {project}:\n{done.stdout}\n{done.stderr}")
    return seconds, done.stdout


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="bench/results/pipeline_cost.json")
    parser.add_argument("--project", default=str(ROOT))
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict:
    sys.path.insert(0, str(ROOT))
    import torch
    from _measure import cpu_name

    from wing.io import write_json  # this checkout's, as the stages use

    args = parse_args(argv)
    project = Path(args.project).resolve()
    lock = project / "dvc.lock"
    before = lock.read_text(encoding="utf-8") if lock.exists() else ""
    load_start = list(os.getloadavg())
    forced, forced_log = timed_run(["dvc", "repro", "-f"], project)
    noop, noop_log = timed_run(["dvc", "repro"], project)
    after = lock.read_text(encoding="utf-8")
    params = yaml.safe_load((project / "params.yaml").read_text(encoding="utf-8"))
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=project, capture_output=True, text=True
    ).stdout.strip()
    result = {
        "benchmark": "pipeline_cost",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit,
        "profile": params.get("profile"),
        "cpu_count": os.cpu_count(),
        # which processor: the bytes of the training outputs depend on its vector extensions
        "device_name": cpu_name(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "stages_run": forced_log.count("Running stage"),
        "forced_repro_seconds": forced,
        "noop_repro_seconds": noop,
        "noop_ran_a_stage": "Running stage" in noop_log,
        "changed_outputs": changed_outputs(before, after),
        "load_average": {"start": load_start, "end": list(os.getloadavg())},
    }
    write_json(args.out, result)
    print(format_table(result))
    return result


def format_table(result: dict) -> str:
    """The result as the Markdown table bench/README.md records."""
    changed = result["changed_outputs"]
    return "\n".join(
        [
            "| measure | value |",
            "|---|---|",
            f"| `dvc repro -f` ({result['profile']}, {result['stages_run']} stages) "
            f"| {result['forced_repro_seconds'] / 60:.1f} min |",
            f"| `dvc repro` after it (no-op) | {result['noop_repro_seconds']:.1f} s |",
            "| stages whose outputs changed | "
            + (", ".join(sorted(changed)) if changed else "none (byte-identical)")
            + " |",
        ]
    )


if __name__ == "__main__":
    main()
