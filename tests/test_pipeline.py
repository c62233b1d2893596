"""End to end: `dvc repro` on the tiny profile in a fresh copy of the project.

One slow test (a few minutes on 2 cores) covers what a user relies on: every stage notebook
runs through papermill, the outputs exist, a second `dvc repro` does nothing, an
evaluation-only parameter does not retrain, `dvc repro -f` gives every output the same bytes
(dvc.lock unchanged), the executed notebooks re-run identically under nbval, and a broken
dataset stops `prepare` with an error naming the file.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import ROOT, make_dataset, set_params, sh

pytestmark = pytest.mark.slow


def test_repro_produces_every_result(project: Path):
    results = project / "results"
    for name in [
        "report.html",
        "evaluation/per_image_scores.csv",
        "evaluation/metrics.json",
        "evaluation/test_images.json",
        "compare/claims.csv",
        "compare/paired_tests.csv",
        "compare/paired_tests.md",
        "compare/paired_tests_last_epoch.csv",
        "compare/mixed_model.csv",
        "compare/friedman.csv",
        "compare/posthoc.csv",
        "compare/delta_mtl.csv",
        "compare/hd95_summary.csv",
        "compare/convergence.csv",
        "compare/convergence_comparison.csv",
        "compare/backbone_interaction.csv",
        "compare/parameters.csv",
        "figures/critical_difference_wound.png",
        "figures/critical_difference_tissue_mean.png",
        "figures/loss_curves.png",
        "figures/per_image_dice.png",
        "figures/gradnorm_weights.png",
        "figures/cohort_examples.png",
        "external/status.csv",
        "longitudinal/healing_errors.csv",
        "longitudinal/measures.csv",
        "figures/healing_trajectories.png",
        "paper/index.html",
        "paper/sections/results.html",
        "paper/values.json",
        "paper/tables/claims.csv",
        "paper/manuscript.json",
        "paper/notebooks/06_compare.html",
        "paper/_static/mathjax/tex-svg.js",
    ]:
        assert (results / name).is_file(), name
    notebooks = sorted(p.name for p in (results / "notebooks").glob("*.ipynb"))
    assert len(notebooks) == 7 + 3 * 2  # seven stages + 3 methods x 2 seeds
    scores = pd.read_csv(results / "evaluation/per_image_scores.csv")
    assert set(scores["method"]) == {"stl", "ew", "gradnorm"} and set(scores["seed"]) == {0, 1}
    assert {"sample_id", "patient_id", "target", "metric", "value", "backbone"} <= set(scores)
    assert set(scores["checkpoint"]) == {"best", "last"}
    assert {"dice", "hd95"} <= set(scores["metric"])
    claims = pd.read_csv(results / "compare/claims.csv")
    headline = claims[claims["headline"]]
    assert {"1", "2a", "2b", "3", "4", "5", "6", "delta_mtl"} <= set(headline["claim_id"])
    assert set(headline["verdict"]) <= {
        "supported",
        "contradicted",
        "no significant difference",
        "not assessed",
    }
    metrics = json.loads((results / "evaluation/metrics.json").read_text())
    assert set(metrics["attention_unet"]) == {"stl", "ew", "gradnorm"}
    report = (results / "report.html").read_text()
    assert "Paired tests" in report and "data:image/png;base64" in report
    assert "Verdicts on the paper's claims" in report and "mixed model" in report
    assert not list(project.rglob(".*.tmp*")), "temporary files left behind"


def test_second_repro_is_a_no_op_and_evaluation_params_do_not_retrain(project: Path):
    assert "Data and pipelines are up to date" in sh(["dvc", "status"], project).stdout
    again = sh(["dvc", "repro"], project).stdout
    assert "Running stage" not in again
    set_params(project, **{"compare.n_boot": 300})
    changed = json.loads(sh(["dvc", "status", "--json"], project).stdout)
    # the stages that bootstrap re-run (external, longitudinal, compare), the report and the
    # manuscript (whose methods text states n_boot); nothing retrains or re-evaluates
    assert set(changed) == {"external", "longitudinal", "compare", "report", "paper"}, changed
    set_params(project, **{"compare.n_boot": 200})


def _out_hashes(lock: str) -> dict[str, str]:
    stages = yaml.safe_load(lock)["stages"]
    return {
        out["path"]: out.get("md5", "")
        for stage in stages.values()
        for out in stage.get("outs", [])
    }


def test_forced_repro_is_byte_identical(project: Path):
    """The README's audit: every stage run again from scratch writes the same bytes (executed
    notebooks, checkpoints, DVCLive logs, tables, figures, report), so `dvc repro -f` leaves
    dvc.lock as it was; the wall-clock timings live outside the DVC outputs."""
    sh(["dvc", "repro"], project)  # in step with the params other tests of the module set
    before = (project / "dvc.lock").read_text()
    sh(["dvc", "repro", "-f"], project)
    after = (project / "dvc.lock").read_text()
    old, new = _out_hashes(before), _out_hashes(after)
    assert sorted(p for p in old if old[p] != new.get(p)) == []
    assert after == before
    timing = project / "results/timings/attention_unet/gradnorm/seed0.json"
    assert json.loads(timing.read_text())["mean_step_seconds"] > 0
    assert (project / "results/timings/runs.csv").is_file()


def test_executed_notebooks_reproduce_under_nbval(project: Path):
    notebooks = [
        f"results/notebooks/{name}.ipynb"
        for name in (
            "01_prepare",
            "03_evaluate",
            "04_external",
            "05_longitudinal",
            "06_compare",
            "07_report",
        )
    ]
    done = sh(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--nbval",
            "--nbval-sanitize-with",
            str(ROOT / "tests/nbval_sanitize.cfg"),
            "--nbval-kernel-name",
            "wing",
            *notebooks,
        ],
        project,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-6000:]
    assert " passed" in done.stdout


def test_broken_dataset_stops_prepare_naming_the_file(project: Path, tmp_path: Path):
    raw = tmp_path / "clinic"
    make_dataset(raw, n_patients=4, visits=2, size=32)
    (raw / "tissue_masks" / "P02_V1.png").unlink()
    set_params(project, **{"data.source": "folder", "data.raw.folder": str(raw)})
    try:
        done = sh(["dvc", "repro", "prepare"], project, check=False)
        assert done.returncode != 0
        assert f"{raw}/tissue_masks/P02_V1.png: missing" in done.stdout + done.stderr
        # nothing half-written: the failed notebook is kept aside, not under results/
        assert not (project / "results/notebooks/01_prepare.ipynb").exists()
        assert (project / "logs/failed/01_prepare.ipynb").is_file()
        assert not list(project.rglob(".*.tmp*"))
    finally:
        set_params(project, **{"data.source": "synthetic", "data.raw.folder": ""})
        sh(["dvc", "checkout"], project, check=False)


GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]


def _commit(project: Path, message: str) -> None:
    sh(["git", "add", "-A"], project)
    sh([*GIT, "commit", "-qm", message, "--allow-empty"], project)


def test_experiment_queue_runs_experiments_side_by_side(project: Path):
    """README "Sweeps": experiments queued from the committed pipeline run two at a time
    (`dvc queue start -j 2`), each with one torch thread, and land as named experiments."""
    sh(["dvc", "repro"], project)
    _commit(project, "baseline")  # the queue runs the committed pipeline, not the workspace
    for n_boot in (150, 250):
        sh(
            [
                "dvc",
                "exp",
                "run",
                "--queue",
                "-n",
                f"boot{n_boot}",
                "-S",
                f"compare.n_boot={n_boot}",
                "-S",
                "train.num_threads=1",
            ],
            project,
        )
    # its workers outlive the call and hold its output: a file, not a pipe we would wait on
    sh(["dvc", "queue", "start", "-j", "2"], project, log=project.parent / "queue.log")
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        status = sh(["dvc", "queue", "status"], project).stdout
        if "Queued" not in status and "Running" not in status:
            break
        time.sleep(5)
    sh(["dvc", "queue", "stop"], project, check=False)
    assert "Failed" not in status, (
        status + sh(["dvc", "queue", "logs", "boot150"], project, check=False).stdout
    )
    shown = json.loads(sh(["dvc", "exp", "show", "--json"], project).stdout)
    text = json.dumps(shown)
    assert '"boot150"' in text and '"boot250"' in text, text[:3000]
    assert '"n_boot": 150' in text and '"n_boot": 250' in text


def test_experiments_travel_between_machines(project: Path, tmp_path: Path):
    """README "Several machines": an experiment is pushed to a git remote and a DVC remote
    (`dvc exp push`) and pulled on another clone (`dvc exp pull`), outputs included."""
    origin, storage = tmp_path / "origin.git", tmp_path / "storage"
    sh(["git", "init", "-q", "--bare", str(origin)], tmp_path)
    sh(["dvc", "remote", "add", "-d", "-f", "shared", str(storage)], project)
    sh(["git", "remote", "add", "origin", str(origin)], project, check=False)
    _commit(project, "remote")
    sh(["git", "push", "-q", "origin", "HEAD:refs/heads/main"], project)
    sh(["dvc", "exp", "run", "-n", "pushed", "-S", "compare.n_boot=120"], project)
    sh(["dvc", "exp", "push", "origin", "pushed"], project)
    other = tmp_path / "machine2"
    sh(["git", "clone", "-q", "-b", "main", str(origin), str(other)], tmp_path)
    sh(["dvc", "exp", "pull", "origin", "pushed"], other)
    sh(["dvc", "exp", "apply", "pushed"], other)
    sh(["dvc", "checkout"], other)
    params = yaml.safe_load((other / "params.yaml").read_text())
    assert params["compare"]["n_boot"] == 120
    claims = pd.read_csv(other / "results/compare/claims.csv")
    pushed = pd.read_csv(project / "results/compare/claims.csv")
    pd.testing.assert_frame_equal(claims, pushed)
    assert "Data and pipelines are up to date" in sh(["dvc", "status"], other).stdout
