"""Prediction and evaluation of run folders (wing.evaluation.predict / evaluate).

Checks the checkpoint rule (each task from its own ``best_<task>.pt``, ``best.pt`` for older
runs, ``last.pt``), scoring at the native resolution, and the tables handed to the compare
stage. Networks are tiny Attention-UNets whose heads are set to predict one class everywhere,
so the class in a prediction says which checkpoint made it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from wing.config import (
    CompareConfig,
    Config,
    DataConfig,
    EvaluateConfig,
    ReportConfig,
    TrainConfig,
)
from wing.data.dataset import WoundDataset
from wing.data.format import Legend, write_legend, write_metadata, write_sample
from wing.evaluation import evaluate, predict
from wing.evaluation.metrics import per_image_scores
from wing.io import write_json
from wing.models import build_network
from wing.paths import timing_path

TISSUES = ("granulation", "slough", "necrosis", "epithelium")
CLASSES = {"wound": 2, "tissue": len(TISSUES) + 1}
OPTIONS = {"channels": (4, 8, 16), "strides": (2, 2)}
SIZE = 32


def _save_constant(path: Path, labels: dict[str, int], epoch: int = 1) -> None:
    """A tiny network checkpoint whose head of each task predicts ``labels[task]`` everywhere."""
    task_classes = {task: CLASSES[task] for task in labels}
    network = build_network("attention_unet", task_classes, backbone_options=OPTIONS)
    state = network.state_dict()
    for task, label in labels.items():
        state[f"heads.{task}.weight"].zero_()
        bias = torch.zeros(CLASSES[task])
        bias[label] = 1.0
        state[f"heads.{task}.bias"].copy_(bias)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "state_dict": state,
            "epoch": epoch,
            "tasks": tuple(labels),
            "task_classes": task_classes,
            "backbone": "attention_unet",
            "backbone_options": OPTIONS,
            "architecture": "hard_sharing",
            "architecture_options": {},
            "image_size": SIZE,
        },
        path,
    )


@pytest.fixture
def native_dataset(tmp_path: Path) -> Path:
    """Two test images of different native sizes (67x90 and 40x40); B has no tissue label."""
    root = tmp_path / "dataset"
    rng = np.random.default_rng(0)
    wound_a = np.zeros((67, 90), np.uint8)
    wound_a[:, :45] = 1
    tissue_a = wound_a.copy()  # granulation on the left half
    wound_b = np.zeros((40, 40), np.uint8)
    wound_b[:10, :10] = 1
    tissue_b = np.full((40, 40), 255, np.uint8)  # a wound-only image
    for sample_id, wound, tissue in (("A", wound_a, tissue_a), ("B", wound_b, tissue_b)):
        image = (rng.random((*wound.shape, 3)) * 255).astype(np.uint8)
        write_sample(root, sample_id, image, wound, tissue)
    write_legend(root, Legend(TISSUES))
    write_metadata(
        root,
        pd.DataFrame({"sample_id": ["A", "B"], "patient_id": ["P1", "P2"], "visit_day": [0, 0]}),
    )
    pd.DataFrame(
        {"sample_id": ["A", "B"], "patient_id": ["P1", "P2"], "split": ["test", "test"]}
    ).to_csv(tmp_path / "split.csv", index=False)
    return root


def _write_runs(runs: Path) -> None:
    """An ``ew`` run with per-task best checkpoints and an older ``stl`` run with ``best.pt``."""
    shared = runs / "attention_unet" / "ew" / "seed0" / "wound+tissue"
    _save_constant(shared / "best_wound.pt", {"wound": 1, "tissue": 1}, epoch=12)
    _save_constant(shared / "best_tissue.pt", {"wound": 0, "tissue": 2}, epoch=15)
    _save_constant(shared / "last.pt", {"wound": 0, "tissue": 0}, epoch=20)
    stl = runs / "attention_unet" / "stl" / "seed0"
    _save_constant(stl / "wound" / "best.pt", {"wound": 1})
    _save_constant(stl / "wound" / "last.pt", {"wound": 0})
    _save_constant(stl / "tissue" / "best.pt", {"tissue": 1})
    _save_constant(stl / "tissue" / "last.pt", {"tissue": 3})


def _config(root: Path) -> Config:
    return Config(
        profile="test",
        data=DataConfig(root=str(root), image_size=SIZE),
        train=TrainConfig(
            methods=("ew", "stl"), seeds=(0,), device="cpu", channels=(4, 8, 16), strides=(2, 2)
        ),
        evaluate=EvaluateConfig(batch_size=2),
        compare=CompareConfig(),
        report=ReportConfig(),
    )


def _constant(maps) -> set[int]:
    return {int(v) for m in maps for v in np.unique(m)}


def test_predict_run_takes_each_task_from_its_best_checkpoint(native_dataset, tmp_path):
    _write_runs(tmp_path / "runs")
    dataset = WoundDataset(native_dataset, ["A", "B"], SIZE)
    run = tmp_path / "runs" / "attention_unet" / "ew" / "seed0"
    best = predict.predict_run(run, dataset, "best", device="cpu")
    assert _constant(best["wound"]) == {1}  # from best_wound.pt
    assert _constant(best["tissue"]) == {2}  # from best_tissue.pt
    last = predict.predict_run(run, dataset, "last", device="cpu")
    assert _constant(last["wound"]) == _constant(last["tissue"]) == {0}
    assert best["wound"].shape == (2, SIZE, SIZE)  # no native sizes: the network's size


def test_predict_run_falls_back_to_best_pt(native_dataset, tmp_path):
    _write_runs(tmp_path / "runs")
    dataset = WoundDataset(native_dataset, ["A"], SIZE)
    run = tmp_path / "runs" / "attention_unet" / "stl" / "seed0"
    best = predict.predict_run(run, dataset, "best", device="cpu")
    assert _constant(best["wound"]) == {1} and _constant(best["tissue"]) == {1}
    assert _constant(predict.predict_run(run, dataset, "last", device="cpu")["tissue"]) == {3}
    # a per-task checkpoint wins over best.pt when both are there
    _save_constant(run / "tissue" / "best_tissue.pt", {"tissue": 4})
    assert _constant(predict.predict_run(run, dataset, device="cpu")["tissue"]) == {4}


def test_predict_run_loads_each_checkpoint_once(native_dataset, tmp_path, monkeypatch):
    _write_runs(tmp_path / "runs")
    loaded = []
    original = predict.load_network

    def counting(path, device="cpu"):
        loaded.append(Path(path).name)
        return original(path, device)

    monkeypatch.setattr(predict, "load_network", counting)
    dataset = WoundDataset(native_dataset, ["A"], SIZE)
    run = tmp_path / "runs" / "attention_unet" / "ew" / "seed0"
    predict.predict_run(run, dataset, "best", device="cpu")
    assert sorted(loaded) == ["best_tissue.pt", "best_wound.pt"]
    loaded.clear()
    predict.predict_run(run, dataset, "last", device="cpu")
    assert loaded == ["last.pt"]


def test_checkpoint_path_errors(tmp_path):
    with pytest.raises(ValueError, match="checkpoint must be"):
        predict.checkpoint_path(tmp_path, "wound", "final")
    with pytest.raises(FileNotFoundError, match="best_wound.pt"):
        predict.checkpoint_path(tmp_path, "wound", "best")


class _LeftHalfWound(nn.Module):
    """Wound logits +1 on the left half of the input columns, -1 on the right half."""

    def forward(self, image: torch.Tensor):
        n, _, h, w = image.shape
        wound = torch.zeros(n, 2, h, w)
        wound[:, 1, :, : w // 2] = 1.0
        wound[:, 1, :, w // 2 :] = -1.0
        return None, {"wound": wound}


def test_native_resolution_prediction_scores_against_native_mask(
    native_dataset, tmp_path, monkeypatch
):
    # A 40x40 network input; its logits are upsampled to the 67x90 original before the argmax.
    run = tmp_path / "run"
    (run / "wound").mkdir(parents=True)
    (run / "wound" / "best_wound.pt").touch()
    monkeypatch.setattr(predict, "load_network", lambda path, device: (_LeftHalfWound(), {}))
    dataset = WoundDataset(native_dataset, ["A"], 40)
    predicted = predict.predict_run(run, dataset, device="cpu", native_sizes=[(67, 90)])
    (wound,) = predicted["wound"]
    assert wound.shape == (67, 90)
    reference = np.zeros((67, 90), np.int64)
    reference[:, :45] = 1  # bilinear, align_corners=False: 20 of 40 columns -> 45 of 90
    np.testing.assert_array_equal(wound, reference)
    empty = [np.zeros((67, 90), np.int64)]
    scores = per_image_scores(predicted["wound"], [reference], empty, empty, TISSUES, ["A"])
    dice = scores.query("target == 'wound' and metric == 'dice'")["value"].item()
    assert dice == 1.0


def test_native_sizes_must_match_dataset(native_dataset, tmp_path):
    _write_runs(tmp_path / "runs")
    dataset = WoundDataset(native_dataset, ["A", "B"], SIZE)
    run = tmp_path / "runs" / "attention_unet" / "ew" / "seed0"
    with pytest.raises(ValueError, match="native sizes"):
        predict.predict_run(run, dataset, device="cpu", native_sizes=[(67, 90)])


def _value(frame, **where) -> float:
    rows = frame
    for key, value in where.items():
        rows = rows[rows[key] == value]
    assert len(rows) == 1, where
    return float(rows["value"].iloc[0])


def test_evaluate_runs_scores_both_checkpoints_at_native_size(native_dataset, tmp_path):
    _write_runs(tmp_path / "runs")
    config = _config(native_dataset)
    scores, pooled = evaluate.evaluate_runs(config, tmp_path / "runs", tmp_path / "split.csv")
    assert list(scores.columns) == evaluate.PER_IMAGE_COLUMNS
    assert list(pooled.columns) == evaluate.POOLED_COLUMNS
    assert set(scores["checkpoint"]) == set(pooled["checkpoint"]) == {"best", "last"}
    assert set(scores["method"]) == {"ew", "stl"}
    assert dict(zip(scores["sample_id"], scores["patient_id"], strict=True)) == {
        "A": "P1",
        "B": "P2",
    }

    ew_best = {"method": "ew", "checkpoint": "best"}
    # wound predicted everywhere: A (67x90, left half wound) tp = fp = 67 * 45
    assert _value(scores, **ew_best, sample_id="A", target="wound", metric="dice") == (
        pytest.approx(2 / 3)
    )
    # B (40x40, 10x10 wound): tp 100, fp 1500
    assert _value(scores, **ew_best, sample_id="B", target="wound", metric="dice") == (
        pytest.approx(200 / 1700)
    )
    tp, fp = 67 * 45 + 100, 67 * 45 + 1500
    assert _value(pooled, **ew_best, target="wound", metric="dice") == pytest.approx(
        2 * tp / (2 * tp + fp)
    )
    # tissue from best_tissue.pt: slough everywhere, granulation missed on A
    assert _value(scores, **ew_best, sample_id="A", target="slough", metric="dice") == 0.0
    assert _value(scores, **ew_best, sample_id="A", target="granulation", metric="precision") == 0
    assert np.isnan(_value(scores, **ew_best, sample_id="B", target="slough", metric="dice"))
    # last: nothing predicted
    ew_last = {"method": "ew", "checkpoint": "last"}
    assert _value(scores, **ew_last, sample_id="B", target="wound", metric="recall") == 0.0
    assert _value(scores, **ew_last, sample_id="A", target="wound", metric="hd95") == (
        pytest.approx(np.hypot(67, 90))
    )
    # an older STL run (best.pt): granulation everywhere on A
    stl_best = {"method": "stl", "checkpoint": "best"}
    assert _value(scores, **stl_best, sample_id="A", target="granulation", metric="dice") == (
        pytest.approx(2 / 3)
    )

    summary = evaluate.metrics_summary(scores, "best")
    assert summary["attention_unet"]["ew"]["dice_wound"] == pytest.approx((2 / 3 + 200 / 1700) / 2)
    assert evaluate.metrics_summary(scores, "last")["attention_unet"]["ew"]["dice_wound"] == 0.0
    assert set(evaluate.at_checkpoint(pooled, "last")["checkpoint"]) == {"last"}


def test_native_size_summary(native_dataset):
    summary = evaluate.native_size_summary(native_dataset, ["A", "B"])
    assert summary == {
        "images": 2,
        "height_min": 40.0,
        "height_median": 53.5,
        "height_max": 67.0,
        "width_min": 40.0,
        "width_median": 65.0,
        "width_max": 90.0,
    }


def _write_logs(run: Path, summary: dict) -> None:
    run.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"epoch": [1], "task": ["wound"], "train_loss": [1.0], "val_loss": [1.0]}).to_csv(
        run / "history.csv", index=False
    )
    pd.DataFrame({"step": [0], "task": ["wound"], "weight": [1.0]}).to_csv(
        run / "balancer_log.csv", index=False
    )
    (run / "summary.json").write_text(json.dumps(summary))


def test_collect_runs_reads_new_and_old_summaries(tmp_path):
    runs = tmp_path / "runs"
    _write_logs(
        runs / "attention_unet" / "ew" / "seed0",
        {
            "networks": [
                {
                    "tasks": ["wound", "tissue"],
                    "best_epochs": {"wound": 12, "tissue": 15},
                    "epochs_trained": 20,
                    "stopped_early": True,
                }
            ],
            "parameters": 100,
            "optimizer_steps": 240,
        },
    )
    timings = tmp_path / "timings"  # wall-clock, outside the hashed run folder
    write_json(timing_path("attention_unet", "ew", 0, timings), {"mean_step_seconds": 0.5})
    _write_logs(  # written before per-task best checkpoints
        runs / "attention_unet" / "stl" / "seed0",
        {
            "networks": [
                {"tasks": ["wound"], "best_epoch": 7},
                {"tasks": ["tissue"], "best_epoch": 9},
            ],
            "parameters": 200,
            "mean_step_seconds": 0.4,
        },
    )
    tables = evaluate.collect_runs(_config(tmp_path), runs, timings)
    table = tables["runs"].set_index("method")
    assert table.loc["ew", "mean_step_seconds"] == 0.5  # from the timing file
    assert table.loc["stl", "mean_step_seconds"] == 0.4  # an older summary's own
    no_timings = evaluate.collect_runs(_config(tmp_path), runs, timings=None)["runs"]
    assert no_timings.set_index("method")["mean_step_seconds"].isna()["ew"]
    assert table.loc["ew", "best_epochs"] == "wound 12 / tissue 15"
    assert table.loc["ew", "epochs_trained"] == "wound+tissue 20"
    assert table.loc["ew", "stopped_early"]
    assert table.loc["ew", "optimizer_steps"] == 240
    assert table.loc["stl", "best_epochs"] == "wound 7 / tissue 9"
    assert pd.isna(table.loc["stl", "epochs_trained"])
    assert not table.loc["stl", "stopped_early"]
    assert pd.isna(table.loc["stl", "optimizer_steps"])
    networks = tables["networks"]
    assert list(networks["task"]) == ["wound", "tissue", "wound", "tissue"]
    assert list(networks["best_epoch"]) == [12, 15, 7, 9]
    assert len(tables["history"]) == 2
