"""Evaluate every run of the train matrix on the test split: per-image and pooled scores.

Every run is scored under both checkpoint rules (:data:`CHECKPOINTS`): ``best`` (primary:
per task, the epoch of that task's lowest validation loss) and ``last`` (the last epoch).
The networks see the test images resized to ``data.image_size``; their logits are upsampled
to each image's native size and scored against its original masks (:mod:`wing.evaluation.metrics`
states the conventions).

Also gathers what the runs logged (loss histories, balancer logs, parameter counts, best
epochs, step times) into tidy tables for the compare stage.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from wing.config import Config
from wing.data.dataset import WoundDataset
from wing.data.format import IMAGES, load_sample, read_legend
from wing.evaluation.metrics import score_tables
from wing.evaluation.predict import CHECKPOINTS, predict_run
from wing.paths import RUNS, SPLIT, TIMINGS, run_dir, timing_path

RUN_KEYS = ("backbone", "method", "seed")
PER_IMAGE_COLUMNS = [
    "sample_id",
    "patient_id",
    "target",
    "metric",
    "value",
    *RUN_KEYS,
    "checkpoint",
]
POOLED_COLUMNS = ["target", "metric", "value", *RUN_KEYS, "checkpoint"]


def matrix(config: Config) -> list[dict]:
    """The runs of the train matrix, as in dvc.yaml (backbone x method x seed)."""
    return [
        {"backbone": b, "method": m, "seed": s}
        for b in config.train.backbones
        for m in config.train.methods
        for s in config.train.seeds
    ]


def split_rows(split_path: Path = SPLIT, name: str = "test") -> pd.DataFrame:
    """The rows of one split (``sample_id``, ``patient_id``, ...), as strings."""
    split = pd.read_csv(split_path, dtype=str)
    return split[split["split"] == name].reset_index(drop=True)


def test_dataset(config: Config, split_path: Path = SPLIT) -> tuple[WoundDataset, pd.DataFrame]:
    """The test images at the network's input size, and the test rows of the split."""
    test = split_rows(split_path, "test")
    return WoundDataset(config.data.root, test["sample_id"], config.data.image_size), test


def native_references(
    dataset_root: str | Path, sample_ids: list[str]
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The reference wound and tissue masks of each sample at its native size."""
    wounds, tissues = [], []
    for sample_id in sample_ids:
        _, wound, tissue = load_sample(dataset_root, sample_id)
        wounds.append(wound)
        tissues.append(tissue)
    return wounds, tissues


def native_size_summary(dataset_root: str | Path, sample_ids: list[str]) -> dict:
    """Images and min / median / max height and width in px (for the methods text)."""
    sizes = []
    for sample_id in sample_ids:
        with Image.open(Path(dataset_root) / IMAGES / f"{sample_id}.png") as image:
            sizes.append((image.height, image.width))
    out: dict = {"images": len(sizes)}
    for axis, name in enumerate(("height", "width")):
        values = np.asarray([s[axis] for s in sizes], dtype=float)
        for stat, func in (("min", np.min), ("median", np.median), ("max", np.max)):
            out[f"{name}_{stat}"] = float(func(values)) if len(values) else float("nan")
    return out


def predict_matrix(
    config: Config,
    dataset: WoundDataset,
    native_sizes: Sequence[tuple[int, int]],
    runs: Path = RUNS,
    checkpoints: Sequence[str] | None = None,
) -> Iterator[tuple[dict, dict[str, list[np.ndarray]]]]:
    """(labels, label maps) of every run of the train matrix on ``dataset``, under each rule
    of ``checkpoints`` (default: the primary rule, ``evaluate.checkpoint``), at the images'
    native sizes; labels are the run keys and ``checkpoint``."""
    for keys in matrix(config):
        for checkpoint in checkpoints or (config.evaluate.checkpoint,):
            predicted = predict_run(
                run_dir(**keys, runs=runs),
                dataset,
                checkpoint,
                config.evaluate.batch_size,
                config.train.device,
                native_sizes=native_sizes,
            )
            yield {**keys, "checkpoint": checkpoint}, predicted


def evaluate_runs(
    config: Config, runs: Path = RUNS, split_path: Path = SPLIT
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per-image scores, pooled scores) of every run and checkpoint rule on the test split.

    Predictions are made at ``data.image_size`` and scored at each test image's native size.
    Columns: :data:`PER_IMAGE_COLUMNS` and :data:`POOLED_COLUMNS`.
    """
    dataset, test = test_dataset(config, split_path)
    ids = list(test["sample_id"])
    reference_wound, reference_tissue = native_references(config.data.root, ids)
    sizes = [mask.shape for mask in reference_wound]
    classes = read_legend(config.data.root).tissue_classes
    per_image, pooled = [], []
    for labels, predicted in predict_matrix(config, dataset, sizes, runs, CHECKPOINTS):
        args = (
            predicted["wound"],
            reference_wound,
            predicted["tissue"],
            reference_tissue,
            classes,
            ids,
        )
        run_per_image, run_pooled = score_tables(*args)
        per_image.append(run_per_image.assign(**labels))
        pooled.append(run_pooled.assign(**labels))
    patients = test.set_index("sample_id")["patient_id"]
    scores = pd.concat(per_image, ignore_index=True)
    scores.insert(1, "patient_id", scores["sample_id"].map(patients))
    return scores[PER_IMAGE_COLUMNS], pd.concat(pooled, ignore_index=True)[POOLED_COLUMNS]


def at_checkpoint(scores: pd.DataFrame, checkpoint: str = "best") -> pd.DataFrame:
    """The rows of one checkpoint rule (a table without a ``checkpoint`` column is returned
    as is): downstream statistics use the primary rule, ``evaluate.checkpoint``."""
    if checkpoint not in CHECKPOINTS:
        raise ValueError(f"checkpoint must be one of {CHECKPOINTS}, got {checkpoint!r}")
    if "checkpoint" not in scores:
        return scores
    return scores[scores["checkpoint"] == checkpoint].reset_index(drop=True)


def metrics_summary(scores: pd.DataFrame, checkpoint: str = "best") -> dict:
    """Mean per-image score per backbone, method, target and metric (``dvc metrics`` JSON),
    under one checkpoint rule only: pass the primary one, ``evaluate.checkpoint``."""
    scores = at_checkpoint(scores, checkpoint)
    means = scores.groupby([*RUN_KEYS[:2], "target", "metric"])["value"].mean()
    out: dict = {}
    for (backbone, method, target, metric), value in means.items():
        node = out.setdefault(backbone, {}).setdefault(method, {})
        node[f"{metric}_{target}"] = None if np.isnan(value) else round(float(value), 6)
    return out


def _network_rows(keys: dict, summary: dict) -> list[dict]:
    """One row per network and task: its best epoch, epochs trained and early stop.

    Runs written before per-task best checkpoints have one ``best_epoch`` per network and no
    ``epochs_trained`` / ``stopped_early``: those are read as the same epoch for every task,
    NaN and False.
    """
    rows = []
    for network in summary["networks"]:
        tasks = list(network.get("tasks", []))
        best = network.get("best_epochs") or dict.fromkeys(tasks, network.get("best_epoch"))
        for task in tasks or list(best):
            epoch = best.get(task)
            rows.append(
                {
                    **keys,
                    "network": "+".join(tasks or list(best)),
                    "task": task,
                    "best_epoch": np.nan if epoch is None else int(epoch),
                    "epochs_trained": network.get("epochs_trained", np.nan),
                    "stopped_early": bool(network.get("stopped_early", False)),
                }
            )
    return rows


def _labelled(rows: list[dict], by: str, value: str) -> str | float:
    """``"wound 12 / tissue 15"``: each row's ``by`` and ``value``, in order, once per ``by``;
    NaN if no row has a value."""
    if all(pd.isna(row[value]) for row in rows):
        return np.nan
    seen: dict = {}
    for row in rows:
        v = row[value]
        seen.setdefault(row[by], "?" if pd.isna(v) else str(int(v)))
    return " / ".join(f"{k} {v}" for k, v in seen.items())


def _mean_step_seconds(keys: dict, summary: dict, timings: Path | None) -> float:
    """A run's wall-clock seconds per step: from its timing file (``results/timings/``, not a
    DVC output), else from a summary written before timings left it, else NaN."""
    path = timing_path(**keys, timings=timings) if timings is not None else None
    if path is not None and path.is_file():
        return float(json.loads(path.read_text())["mean_step_seconds"])
    return float(summary.get("mean_step_seconds", np.nan))


def collect_runs(
    config: Config, runs: Path = RUNS, timings: Path | None = TIMINGS
) -> dict[str, pd.DataFrame]:
    """The runs' histories, balancer logs and summaries as tidy tables.

    ``runs`` has one row per run: ``networks, parameters, best_epochs`` ("wound 12 /
    tissue 15", per task), ``epochs_trained`` (per network: "wound+tissue 20"),
    ``stopped_early`` (any network), ``optimizer_steps`` and ``mean_step_seconds`` (from the
    run's timing file under ``timings``, NaN when not recorded; varies between runs);
    ``networks`` has one row per network and task (``best_epoch, epochs_trained,
    stopped_early``). Keys that older runs lack are NaN (False for ``stopped_early``).
    """
    histories, logs, summaries, networks = [], [], [], []
    for keys in matrix(config):
        folder = run_dir(**keys, runs=runs)
        histories.append(pd.read_csv(folder / "history.csv"))
        logs.append(pd.read_csv(folder / "balancer_log.csv"))
        summary = json.loads((folder / "summary.json").read_text())
        rows = _network_rows(keys, summary)
        networks.extend(rows)
        steps = summary.get("optimizer_steps", np.nan)
        summaries.append(
            {
                **keys,
                "networks": len(summary["networks"]),
                "parameters": summary["parameters"],
                "best_epochs": _labelled(rows, "task", "best_epoch"),
                "epochs_trained": _labelled(rows, "network", "epochs_trained"),
                "stopped_early": any(row["stopped_early"] for row in rows),
                "optimizer_steps": steps if np.isscalar(steps) else json.dumps(steps),
                "mean_step_seconds": _mean_step_seconds(keys, summary, timings),
            }
        )
    return {
        "history": pd.concat(histories, ignore_index=True),
        "balancer_log": pd.concat(logs, ignore_index=True),
        "runs": pd.DataFrame(summaries),
        "networks": pd.DataFrame(networks),
    }
