"""Scores of the image-level (auxiliary) tasks: AUROC and F1 per label, per run.

The image-level task (``tissue_presence``, :mod:`wing.training.tasks`) is predicted on the
test images at the network's input size; its reference is the presence of each class in the
test image's tissue mask at its NATIVE size (at least one pixel), so a class too small to
survive resizing still counts as present. Per run, checkpoint rule and label: AUROC
(scikit-learn's ``roc_auc_score``), F1 at probability 0.5 and the prevalence, over the test
images with a tissue annotation. Images, not patients, are the unit here: the scores are
descriptive and no claim rests on them. A label whose reference is all present or all absent
on the test images has no AUROC (NaN, reported "not assessed").
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import f1_score, roc_auc_score

from wing.config import Config
from wing.data.format import read_legend
from wing.evaluation.evaluate import RUN_KEYS, matrix, native_references, test_dataset
from wing.evaluation.predict import CHECKPOINTS, network_dirs, predict_probabilities
from wing.paths import RUNS, SPLIT, run_dir
from wing.training.tasks import AUXILIARY_TASKS, presence_indices, presence_target, task_spec

COLUMNS = [*RUN_KEYS, "checkpoint", "task", "label", "metric", "value", "images", "patients"]
THRESHOLD = 0.5


def label_scores(reference: np.ndarray, probability: np.ndarray) -> dict[str, float]:
    """AUROC, F1 at :data:`THRESHOLD` and prevalence of one label over labelled images
    (``reference`` 0/1, NaN = unlabelled); AUROC NaN when the reference has one class."""
    keep = ~np.isnan(reference)
    y, p = reference[keep].astype(int), probability[keep]
    if y.size == 0:
        return {"auroc": np.nan, "f1": np.nan, "prevalence": np.nan}
    both = np.unique(y).size == 2
    return {
        "auroc": float(roc_auc_score(y, p)) if both else np.nan,
        "f1": float(f1_score(y, p >= THRESHOLD, zero_division=0.0)),
        "prevalence": float(y.mean()),
    }


def presence_references(tissue_masks: list[np.ndarray], indices) -> np.ndarray:
    """(N, labels) presence of each class index in each native-size tissue mask (NaN rows:
    no annotation)."""
    rows = [
        presence_target(torch.from_numpy(m.astype(np.int64))[None], indices)[0]
        for m in tissue_masks
    ]
    return torch.stack(rows).numpy() if rows else np.zeros((0, len(indices)))


def score_image_tasks(config: Config, runs: Path = RUNS, split_path: Path = SPLIT) -> pd.DataFrame:
    """One row per run, checkpoint rule, image-level task, label and metric (:data:`COLUMNS`);
    empty when no run trains an image-level task."""
    rows: list[dict] = []
    legend = read_legend(config.data.root)
    dataset = test = references = None  # read once, and only when a run has an image task
    for keys in matrix(config):
        for task in AUXILIARY_TASKS:
            spec = task_spec(task)
            if spec.kind != "image":
                continue
            if task not in network_dirs(run_dir(**keys, runs=runs)):
                continue  # this run has no network for the task
            if dataset is None:
                dataset, test = test_dataset(config, split_path)
                _, tissue = native_references(config.data.root, list(test["sample_id"]))
                references = presence_references(tissue, presence_indices(legend))
            for checkpoint in CHECKPOINTS:
                probability = predict_probabilities(
                    run_dir(**keys, runs=runs),
                    task,
                    dataset,
                    checkpoint,
                    config.evaluate.batch_size,
                    config.train.device,
                )
                labelled = ~np.isnan(references).any(1)
                patients = test.loc[labelled, "patient_id"].nunique()
                for column, label in enumerate(spec.labels(legend)):
                    scores = label_scores(references[:, column], probability[:, column])
                    for metric, value in scores.items():
                        rows.append(
                            {
                                **keys,
                                "checkpoint": checkpoint,
                                "task": task,
                                "label": label,
                                "metric": metric,
                                "value": value,
                                "images": int(labelled.sum()),
                                "patients": int(patients),
                            }
                        )
    return pd.DataFrame(rows, columns=COLUMNS)
