"""External validation: every trained model scored on datasets from other clinics.

A user's first question after training is how the model does on data it never saw from a
place it never saw. ``evaluate.external`` in params.yaml lists data sources
(:data:`wing.data.sources.SOURCES`, each read from its ``data.raw.<source>`` folder); each is
imported into the canonical format in a temporary folder, and every trained run is scored on
all of its images (an external dataset is never trained on, so it has no split) under the
primary checkpoint rule (``evaluate.checkpoint``), with the metrics of
:mod:`wing.evaluation.metrics` except HD95 (pixels of another camera are not comparable).

Decisions (this compendium's):

- Only the tasks a dataset is labelled for are scored: a wound-only dataset gets wound
  scores and no tissue rows (no error). A task counts as labelled when some image has a
  non-ignored pixel for it.
- Tissue classes are matched by name (the shared taxonomy of :mod:`wing.data.taxonomy`).
  Only classes the model and the dataset share are scored; ``tissue_mean`` averages them.
  A reference pixel of a class the model cannot predict (e.g. LUTSeg's ``other``) is
  ignored; a predicted class the dataset does not label counts as "no tissue" there.
- A source that is also the training source (``data.source``) is refused: that is not
  external data. A source whose raw folder is absent is not an error: its rows read
  "not assessed" with the missing path, so the quick profile runs on any machine.
- Statistics are per image and per patient (the unit of analysis): the paired comparison
  of :func:`wing.statistics.paired.compare_to_reference` on patient means, as in the
  internal test set. With few patients (LUTSeg's 13 photographs are 3 patients) the
  comparison is descriptive; the report says so and no claim rests on it.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from wing.config import Config, ConfigError
from wing.data.dataset import WoundDataset
from wing.data.format import IGNORE_INDEX, DatasetError, load_sample, read_legend
from wing.evaluation.evaluate import RUN_KEYS, predict_matrix
from wing.evaluation.metrics import score_tables
from wing.paths import RUNS
from wing.statistics.paired import compare_to_reference, summary_table

PER_IMAGE_COLUMNS = [
    "dataset",
    "sample_id",
    "patient_id",
    "target",
    "metric",
    "value",
    *RUN_KEYS,
    "checkpoint",
]
POOLED_COLUMNS = ["dataset", "target", "metric", "value", *RUN_KEYS, "checkpoint"]
STATUS_COLUMNS = ["dataset", "status", "images", "patients", "tasks", "tissue_classes", "reason"]
ASSESSED = "assessed"
NOT_ASSESSED = "not assessed"


def check_external(config: Config, path: str | Path = "params.yaml") -> None:
    """Refuse an external source that is unknown or that is the training data itself."""
    from wing.data.sources import SOURCES

    for source in config.evaluate.external:
        if source not in SOURCES.names():
            raise ConfigError(
                f"{path}: evaluate.external names {source!r}, which is not a data source; "
                f"known: {SOURCES.names()}"
            )
        if source == config.data.source:
            raise ConfigError(
                f"{path}: evaluate.external lists {source!r}, the training source "
                "(data.source); external validation needs data from elsewhere"
            )


def raw_folder(config: Config, source: str) -> Path:
    """Where ``source`` is read from (``data.raw.<source>``; the synthetic cohort has none)."""
    if source == "dfutissue_fuseg":
        source = "dfutissue"
    return Path(getattr(config.data.raw, source, "") or "")


def import_external(config: Config, source: str, out_dir: Path) -> pd.DataFrame:
    """Write ``source`` in the canonical format into ``out_dir``; return its metadata."""
    from wing.data.format import validate_dataset
    from wing.data.sources import SOURCES

    data = dataclasses.replace(config.data, source=source, root=str(out_dir))
    SOURCES.get(source)(data, out_dir)
    return validate_dataset(out_dir)


def match_classes(
    model_classes: Sequence[str], dataset_classes: Sequence[str]
) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """(shared classes, prediction lookup, reference lookup) for scoring across legends.

    Shared classes keep the dataset's order. The lookups map a label index (0 = no tissue,
    i = class i, 255 = ignore) onto the shared legend: a model class the dataset lacks -> 0,
    a dataset class the model lacks -> 255 (ignored).
    """
    shared = tuple(c for c in dataset_classes if c in set(model_classes))
    index = {name: i + 1 for i, name in enumerate(shared)}
    predicted = np.zeros(256, dtype=np.uint8)
    for i, name in enumerate(model_classes, start=1):
        predicted[i] = index.get(name, 0)
    reference = np.full(256, IGNORE_INDEX, dtype=np.uint8)
    reference[0] = 0
    for i, name in enumerate(dataset_classes, start=1):
        reference[i] = index.get(name, IGNORE_INDEX)
    return shared, predicted, reference


def labelled_tasks(wounds: Sequence[np.ndarray], tissues: Sequence[np.ndarray]) -> list[str]:
    """The tasks with at least one non-ignored reference pixel in the dataset."""
    tasks = []
    if any(bool((w != IGNORE_INDEX).any()) for w in wounds):
        tasks.append("wound")
    if any(bool((t != IGNORE_INDEX).any()) for t in tissues):
        tasks.append("tissue")
    return tasks


def score_external_dataset(
    config: Config, root: Path, name: str, runs: Path = RUNS
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """(per-image scores, pooled scores, status row) of every trained run on one dataset."""
    metadata = pd.read_csv(root / "metadata.csv", dtype={"sample_id": str, "patient_id": str})
    ids = list(metadata["sample_id"])
    references = [load_sample(root, sample_id)[1:] for sample_id in ids]
    wounds = [r[0] for r in references]
    model_classes = read_legend(config.data.root).tissue_classes
    shared, predicted_lookup, reference_lookup = match_classes(
        model_classes, read_legend(root).tissue_classes
    )
    tissues = [reference_lookup[r[1]] for r in references]
    tasks = labelled_tasks(wounds, tissues if shared else [])
    status = {
        "dataset": name,
        "status": ASSESSED,
        "images": len(ids),
        "patients": int(metadata["patient_id"].nunique()),
        "tasks": "+".join(tasks),
        "tissue_classes": "+".join(shared),
        "reason": "",
    }
    if not tasks:
        reason = f"{root}: no wound or shared tissue label to score"
        return _empty(PER_IMAGE_COLUMNS), _empty(POOLED_COLUMNS), _not_assessed(name, reason)
    dataset = WoundDataset(root, ids, config.data.image_size)
    sizes = [w.shape for w in wounds]
    per_image, pooled = [], []
    for labels, maps in predict_matrix(config, dataset, sizes, runs):
        tissue_maps = [predicted_lookup[m] for m in maps["tissue"]]
        # no HD95: a distance in pixels is not comparable across other clinics' cameras
        run_image, run_pooled = score_tables(
            maps["wound"], wounds, tissue_maps, tissues, shared or ("none",), ids, distances=False
        )
        labels = {**labels, "dataset": name}
        per_image.append(run_image.assign(**labels))
        pooled.append(run_pooled.assign(**labels))
    scores = pd.concat(per_image, ignore_index=True)
    scores["patient_id"] = scores["sample_id"].map(metadata.set_index("sample_id")["patient_id"])
    pooled_scores = pd.concat(pooled, ignore_index=True)
    scored = ["wound"] if "wound" in tasks else []
    if "tissue" in tasks:
        scored += [*shared, "tissue_mean"]
    scores = scores[scores["target"].isin(scored) & (scores["metric"] != "hd95")]
    pooled_scores = pooled_scores[pooled_scores["target"].isin(scored)]
    return (
        scores[PER_IMAGE_COLUMNS].reset_index(drop=True),
        pooled_scores[POOLED_COLUMNS].reset_index(drop=True),
        status,
    )


def evaluate_external(
    config: Config, runs: Path = RUNS
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(per-image scores, pooled scores, status) of every run on every ``evaluate.external``.

    Each dataset is imported into a temporary folder that is removed afterwards; a source
    whose raw folder is absent gets a "not assessed" status row naming the path.
    """
    per_image, pooled, status = [_empty(PER_IMAGE_COLUMNS)], [_empty(POOLED_COLUMNS)], []
    for source in config.evaluate.external:
        folder = raw_folder(config, source)
        if source != "synthetic" and not folder.exists():
            reason = f"{folder or 'data.raw.' + source}: not found (set data.raw.{source})"
            status.append(_not_assessed(source, reason))
            continue
        with tempfile.TemporaryDirectory(prefix=f"wing-external-{source}-") as tmp:
            root = Path(tmp) / "dataset"
            try:
                import_external(config, source, root)
            except DatasetError as error:
                problem = f"external dataset {source!r}: {error.problem}"
                raise DatasetError(error.path, problem) from error
            images, pooled_scores, row = score_external_dataset(config, root, source, runs)
        per_image.append(images)
        pooled.append(pooled_scores)
        status.append(row)
    return (
        pd.concat(per_image, ignore_index=True),
        pd.concat(pooled, ignore_index=True),
        pd.DataFrame(status, columns=STATUS_COLUMNS),
    )


def external_comparisons(
    scores: pd.DataFrame,
    reference: str = "gradnorm",
    metric: str = "dice",
    n_boot: int = 2000,
    seed: int = 0,
    checkpoint: str = "best",
) -> pd.DataFrame:
    """Patient-level paired comparisons of ``reference`` against each method, per dataset
    (descriptive: Holm within each dataset; no claim rests on external data)."""
    tables = []
    for name, group in scores.groupby("dataset", sort=False):
        if reference not in set(group["method"]):
            continue
        table = compare_to_reference(
            group.drop(columns="dataset"),
            reference,
            metric,
            targets=["wound", "tissue_mean"],
            n_boot=n_boot,
            seed=seed,
            unit="patient",
            checkpoint=checkpoint,
        )
        tables.append(table.assign(dataset=name))
    if not tables:
        return pd.DataFrame()
    out = pd.concat(tables, ignore_index=True)
    return out[["dataset", *[c for c in out.columns if c != "dataset"]]]


def external_summary(
    scores: pd.DataFrame, metric: str = "dice", n_boot: int = 2000, seed: int = 0
) -> pd.DataFrame:
    """Per dataset, backbone, method and target: the patient-level mean with its bootstrap CI
    (:func:`wing.statistics.paired.summary_table` on each dataset)."""
    tables = [
        summary_table(group.drop(columns="dataset"), metric, n_boot, seed).assign(dataset=name)
        for name, group in scores.groupby("dataset", sort=False)
    ]
    if not tables:
        return pd.DataFrame()
    out = pd.concat(tables, ignore_index=True)
    return out[["dataset", *[c for c in out.columns if c != "dataset"]]]


def _empty(columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(columns=columns)


def _not_assessed(name: str, reason: str) -> dict:
    return {
        "dataset": name,
        "status": NOT_ASSESSED,
        "images": 0,
        "patients": 0,
        "tasks": "",
        "tissue_classes": "",
        "reason": reason,
    }
