"""Evaluate every run of the train matrix on the test split: per-image and pooled scores.

Also gathers what the runs logged (loss histories, balancer logs, parameter counts, step
times) into tidy tables for the compare stage.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from wing.config import Config
from wing.data.dataset import WoundDataset, as_numpy_labels
from wing.data.format import read_legend
from wing.evaluation.metrics import per_image_scores, pooled_scores
from wing.evaluation.predict import predict_run
from wing.paths import RUNS, SPLIT, run_dir

RUN_KEYS = ("backbone", "method", "seed")


def matrix(config: Config) -> list[dict]:
    """The runs of the train matrix, as in dvc.yaml (backbone x method x seed)."""
    return [
        {"backbone": b, "method": m, "seed": s}
        for b in config.train.backbones
        for m in config.train.methods
        for s in config.train.seeds
    ]


def test_dataset(config: Config, split_path: Path = SPLIT) -> tuple[WoundDataset, pd.DataFrame]:
    split = pd.read_csv(split_path, dtype=str)
    test = split[split["split"] == "test"].reset_index(drop=True)
    return WoundDataset(config.data.root, test["sample_id"], config.data.image_size), test


def evaluate_runs(
    config: Config, runs: Path = RUNS, split_path: Path = SPLIT
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per-image scores, pooled scores) of every run on the test split, tidy."""
    dataset, test = test_dataset(config, split_path)
    reference_wound, reference_tissue = as_numpy_labels(dataset)
    classes = read_legend(config.data.root).tissue_classes
    per_image, pooled = [], []
    for keys in matrix(config):
        predicted = predict_run(
            run_dir(**keys, runs=runs),
            dataset,
            config.evaluate.checkpoint,
            config.evaluate.batch_size,
            config.train.device,
        )
        args = (
            predicted["wound"],
            reference_wound,
            predicted["tissue"],
            reference_tissue,
            classes,
            list(test["sample_id"]),
        )
        per_image.append(per_image_scores(*args).assign(**keys))
        pooled.append(pooled_scores(*args).assign(**keys))
    patients = test.set_index("sample_id")["patient_id"]
    scores = pd.concat(per_image, ignore_index=True)
    scores.insert(1, "patient_id", scores["sample_id"].map(patients))
    return scores, pd.concat(pooled, ignore_index=True)


def metrics_summary(scores: pd.DataFrame) -> dict:
    """Mean per-image Dice / IoU per backbone, method and target (``dvc metrics`` JSON)."""
    means = scores.groupby([*RUN_KEYS[:2], "target", "metric"])["value"].mean()
    out: dict = {}
    for (backbone, method, target, metric), value in means.items():
        node = out.setdefault(backbone, {}).setdefault(method, {})
        node[f"{metric}_{target}"] = None if np.isnan(value) else round(float(value), 6)
    return out


def collect_runs(config: Config, runs: Path = RUNS) -> dict[str, pd.DataFrame]:
    """The runs' histories, balancer logs and summaries as tidy tables."""
    histories, logs, summaries = [], [], []
    for keys in matrix(config):
        folder = run_dir(**keys, runs=runs)
        histories.append(pd.read_csv(folder / "history.csv"))
        logs.append(pd.read_csv(folder / "balancer_log.csv"))
        summary = json.loads((folder / "summary.json").read_text())
        summaries.append(
            {
                **keys,
                "networks": len(summary["networks"]),
                "parameters": summary["parameters"],
                "best_epochs": "/".join(str(n["best_epoch"]) for n in summary["networks"]),
                "mean_step_seconds": summary["mean_step_seconds"],
            }
        )
    return {
        "history": pd.concat(histories, ignore_index=True),
        "balancer_log": pd.concat(logs, ignore_index=True),
        "runs": pd.DataFrame(summaries),
    }
