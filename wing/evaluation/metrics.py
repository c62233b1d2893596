"""Per-image and pooled Dice / IoU / precision / recall / HD95 of wound and wound-tissue maps.

The scores are computed by MONAI: confusion counts with ``get_confusion_matrix``, Dice
(Dice 1945), IoU (Jaccard 1912), precision and recall from them with
``compute_confusion_matrix_metric``, and the 95th-percentile symmetric Hausdorff distance
(HD95; Huttenlocher et al. 1993) with ``compute_hausdorff_distance(percentile=95)``. This
module turns label maps into one-hot tensors, applies the ignore index and the empty-mask
convention below, and returns tidy tables.

Inputs are label maps at whatever resolution they are scored at (here: each test image's
native size): a sequence of 2-D integer arrays, one per image and of any size, or one
``(N, H, W)`` array. Wound maps hold {0, 1}; tissue maps hold 0..K where 0 is "no tissue" and
``i`` is ``tissue_classes[i - 1]``.

Conventions (the same for the wound and every tissue class; for the methods text):

* Ignored pixels. Reference pixels equal to 255 (unannotated) are removed from both the
  prediction and the reference before scoring, in either task.
* Empty masks (nnU-Net's convention, per image and class). With ``reference`` and
  ``prediction`` the pixels of the class in the (non-ignored part of the) image:

  - reference empty, prediction non-empty: Dice = IoU = precision = 0, recall undefined
    (NaN), HD95 = the image diagonal in pixels (the largest possible distance, so a spurious
    prediction is penalised as in Metrics Reloaded);
  - both empty: every metric is undefined (NaN) and the image does not count for that class;
  - reference non-empty, prediction empty: Dice = IoU = precision = recall = 0 (precision is
    0, not NaN), HD95 = the image diagonal in pixels.

  A class absent from an image's reference therefore costs nothing only if it is also not
  predicted there.
* HD95 is in pixels of the scored (native) image: the larger of the two directed 95th
  percentiles of the Euclidean distances between the mask edges (MONAI, ``directed=False``).
* ``tissue_mean`` is, per image and metric, the mean over the tissue classes counted on that
  image (not NaN); NaN if none is.
* Pooled scores sum true positives, false positives and false negatives over every
  non-ignored pixel of every image before forming the ratio, so each image weighs by its
  (native) pixel count; the same empty rule applies to the summed counts. HD95 is a per-image
  score and is not pooled.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from monai.metrics import (
    compute_confusion_matrix_metric,
    compute_hausdorff_distance,
    get_confusion_matrix,
)

IGNORE_INDEX = 255
METRICS = ("dice", "iou", "precision", "recall", "hd95")
POOLED_METRICS = ("dice", "iou", "precision", "recall")  # HD95 is per image only
WOUND = "wound"
TISSUE_MEAN = "tissue_mean"
SCORE_COLUMNS = ["sample_id", "target", "metric", "value"]
POOLED_COLUMNS = ["target", "metric", "value"]
HD_PERCENTILE = 95

# MONAI's names of the ratios of confusion counts.
_MONAI_NAMES = {
    "dice": "f1 score",
    "iou": "threat score",
    "precision": "precision",
    "recall": "sensitivity",
}

LabelMaps = Sequence[np.ndarray | torch.Tensor] | np.ndarray | torch.Tensor


def _as_maps(x: LabelMaps, name: str) -> list[torch.Tensor]:
    """One CPU int64 (H, W) tensor per image, from a sequence of 2-D maps or an (N, H, W) array."""
    if isinstance(x, np.ndarray | torch.Tensor):
        t = torch.as_tensor(x)
        if t.ndim != 3:
            raise ValueError(
                f"{name} must be a list of (H, W) maps or have shape (N, H, W), "
                f"got shape {tuple(t.shape)}"
            )
        items = list(t)
    else:
        items = [
            torch.as_tensor(np.asarray(m) if not isinstance(m, torch.Tensor) else m) for m in x
        ]
    maps = []
    for i, m in enumerate(items):
        if m.ndim != 2:
            raise ValueError(f"{name}[{i}] must be a 2-D (H, W) map, got shape {tuple(m.shape)}")
        maps.append(m.detach().cpu().long())
    return maps


def _one_hot(
    labels: torch.Tensor, num_classes: int, valid: torch.Tensor, name: str
) -> torch.Tensor:
    """Foreground one-hot (1, C - 1, H, W) float tensor of labels 0..C-1, zero where not
    ``valid``."""
    values = labels[valid]
    if values.numel() and (int(values.min()) < 0 or int(values.max()) >= num_classes):
        found = sorted(set(values[(values < 0) | (values >= num_classes)].unique().tolist()))
        raise ValueError(f"{name} has labels outside 0..{num_classes - 1}: {found}")
    classes = torch.arange(1, num_classes, dtype=labels.dtype).view(-1, 1, 1)
    return ((labels[None] == classes) & valid).float()[None]


def _score_image(
    pred: torch.Tensor, ref: torch.Tensor, num_classes: int, name: str, distances: bool
) -> tuple[torch.Tensor, np.ndarray]:
    """Foreground confusion counts (C - 1, 4) = [tp, fp, tn, fn] and HD95 (C - 1,) of one image
    (HD95 all NaN unless ``distances``)."""
    if pred.shape != ref.shape:
        raise ValueError(
            f"pred_{name} {tuple(pred.shape)} and ref_{name} {tuple(ref.shape)} differ"
        )
    valid = ref != IGNORE_INDEX
    p = _one_hot(pred, num_classes, valid, f"pred_{name}")
    r = _one_hot(ref, num_classes, valid, f"ref_{name}")
    counts = get_confusion_matrix(p, r, include_background=True)[0].double()
    if not distances:
        return counts, np.full(num_classes - 1, np.nan)
    tp, fp, fn = counts[:, 0], counts[:, 1], counts[:, 3]
    in_pred, in_ref = tp + fp > 0, tp + fn > 0
    # Empty-mask convention: one of the two empty -> the diagonal; both empty -> NaN.
    diagonal = math.hypot(*ref.shape)
    hd95 = np.where(in_pred | in_ref, diagonal, np.nan)
    both = torch.nonzero(in_pred & in_ref).flatten()
    if len(both):
        with warnings.catch_warnings():
            # MONAI 1.5+ passes its own deprecated always_return_as_numpy argument internally.
            warnings.filterwarnings("ignore", ".*always_return_as_numpy", FutureWarning)
            found = compute_hausdorff_distance(
                p[:, both], r[:, both], include_background=True, percentile=HD_PERCENTILE
            )
        hd95[both.numpy()] = found[0].double().numpy()
    return counts, hd95


def _ratios(counts: torch.Tensor) -> dict[str, np.ndarray]:
    """Dice, IoU, precision and recall from counts [..., 4] with the empty-mask convention.

    MONAI gives NaN for a zero denominator, which is already the convention for Dice, IoU and
    recall; precision with an empty prediction and a non-empty reference is set to 0.
    """
    out = {
        metric: compute_confusion_matrix_metric(name, counts).double().numpy()
        for metric, name in _MONAI_NAMES.items()
    }
    tp, fp, fn = counts[..., 0], counts[..., 1], counts[..., 3]
    missed = ((tp + fp == 0) & (fn > 0)).numpy()
    out["precision"] = np.where(missed, 0.0, out["precision"])
    return out


def _score_task(
    pred: LabelMaps, ref: LabelMaps, num_classes: int, name: str, distances: bool = True
) -> tuple[torch.Tensor, np.ndarray]:
    """Counts (N, C - 1, 4) and HD95 (N, C - 1) of every image of one task."""
    preds, refs = _as_maps(pred, f"pred_{name}"), _as_maps(ref, f"ref_{name}")
    if len(preds) != len(refs):
        raise ValueError(f"{len(preds)} pred_{name} maps but {len(refs)} ref_{name} maps")
    if not preds:
        return torch.zeros(0, num_classes - 1, 4, dtype=torch.float64), np.zeros(
            (0, num_classes - 1)
        )
    scored = [
        _score_image(p, r, num_classes, name, distances) for p, r in zip(preds, refs, strict=True)
    ]
    return torch.stack([c for c, _ in scored]), np.stack([h for _, h in scored])


def _check_inputs(n_wound: int, n_tissue: int, tissue_classes, sample_ids) -> None:
    if n_wound != n_tissue:
        raise ValueError(f"{n_wound} wound maps but {n_tissue} tissue maps")
    if len(sample_ids) != n_wound:
        raise ValueError(f"{len(sample_ids)} sample_ids for {n_wound} images")
    if len(set(map(str, sample_ids))) != len(sample_ids):
        raise ValueError("sample_ids must be unique")
    names = list(tissue_classes)
    if len(set(names)) != len(names) or {WOUND, TISSUE_MEAN} & set(names):
        raise ValueError(f"tissue_classes must be unique and not {WOUND!r}/{TISSUE_MEAN!r}")


def _tissue_mean(values: np.ndarray) -> np.ndarray:
    """Row-wise mean over the non-NaN entries; NaN where a row has none."""
    counts = np.sum(~np.isnan(values), axis=1)
    sums = np.nansum(values, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def _length(maps: LabelMaps) -> int:
    return int(maps.shape[0]) if isinstance(maps, np.ndarray | torch.Tensor) else len(maps)


def _score(
    pred_wound: LabelMaps,
    ref_wound: LabelMaps,
    pred_tissue: LabelMaps,
    ref_tissue: LabelMaps,
    tissue_classes: Sequence[str],
    sample_ids: Sequence[str],
    distances: bool,
) -> tuple[tuple[torch.Tensor, np.ndarray], tuple[torch.Tensor, np.ndarray]]:
    """(counts, HD95) of the wound and of the tissue classes, per image."""
    _check_inputs(_length(pred_wound), _length(pred_tissue), tissue_classes, sample_ids)
    wound = _score_task(pred_wound, ref_wound, 2, "wound", distances)
    tissue = _score_task(pred_tissue, ref_tissue, len(tissue_classes) + 1, "tissue", distances)
    return wound, tissue


def _per_image_table(wound, tissue, tissue_classes, sample_ids) -> pd.DataFrame:
    wound = {**_ratios(wound[0]), "hd95": wound[1]}
    tissue = {**_ratios(tissue[0]), "hd95": tissue[1]}
    ids = np.asarray([str(s) for s in sample_ids], dtype=object)
    frames = []
    for metric in METRICS:
        columns = {WOUND: wound[metric][:, 0]}
        columns.update({name: tissue[metric][:, i] for i, name in enumerate(tissue_classes)})
        columns[TISSUE_MEAN] = _tissue_mean(tissue[metric].reshape(len(ids), -1))
        wide = pd.DataFrame(columns, index=range(len(ids)))
        wide.insert(0, "sample_id", ids)
        long = wide.melt(id_vars="sample_id", var_name="target", value_name="value")
        long.insert(2, "metric", metric)
        frames.append(long)
    out = pd.concat(frames, ignore_index=True)
    return _sorted(out, ["sample_id", "target", "metric"], list(ids), tissue_classes)


def _pooled_table(wound_counts, tissue_counts, tissue_classes) -> pd.DataFrame:
    wound, tissue = _ratios(wound_counts.sum(0)), _ratios(tissue_counts.sum(0))
    rows = []
    for metric in POOLED_METRICS:
        rows.append((WOUND, metric, float(wound[metric][0])))
        rows.extend(
            (name, metric, float(tissue[metric][i])) for i, name in enumerate(tissue_classes)
        )
        rows.append((TISSUE_MEAN, metric, float(_tissue_mean(tissue[metric][None, :])[0])))
    out = pd.DataFrame(rows, columns=POOLED_COLUMNS)
    return _sorted(out, ["target", "metric"], None, tissue_classes)


def per_image_scores(
    pred_wound: LabelMaps,
    ref_wound: LabelMaps,
    pred_tissue: LabelMaps,
    ref_tissue: LabelMaps,
    tissue_classes: Sequence[str],
    sample_ids: Sequence[str],
) -> pd.DataFrame:
    """Dice, IoU, precision, recall and HD95 of every image for the wound, each tissue class
    and ``tissue_mean``.

    Each input holds one label map per image (a list of (H, W) maps of any size, prediction
    and reference of an image the same size, or an (N, H, W) array); see the module docstring
    for the values, the ignore index and the empty-mask convention. Returns a tidy frame
    ``sample_id, target, metric, value``: targets ``wound``, each tissue class, then
    ``tissue_mean``; metrics :data:`METRICS` (HD95 in pixels).
    """
    args = (pred_wound, ref_wound, pred_tissue, ref_tissue, tissue_classes, sample_ids)
    wound, tissue = _score(*args, distances=True)
    return _per_image_table(wound, tissue, tissue_classes, sample_ids)


def pooled_scores(
    pred_wound: LabelMaps,
    ref_wound: LabelMaps,
    pred_tissue: LabelMaps,
    ref_tissue: LabelMaps,
    tissue_classes: Sequence[str],
    sample_ids: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Dice, IoU, precision and recall pooled over all non-ignored pixels, per target.

    True positives, false positives and false negatives are summed over every pixel of every
    image (each image weighs by its pixel count) before forming Dice = 2TP / (2TP + FP + FN),
    IoU = TP / (TP + FP + FN), precision = TP / (TP + FP), recall = TP / (TP + FN), with the
    empty-mask convention of the module docstring applied to the sums. ``tissue_mean`` is the
    mean of the pooled per-class scores that are defined. HD95 is not pooled. Returns
    ``target, metric, value``, one row per target and metric of :data:`POOLED_METRICS`.
    ``sample_ids`` is accepted for symmetry and only checked.
    """
    if sample_ids is None:
        sample_ids = [str(i) for i in range(_length(pred_wound))]
    args = (pred_wound, ref_wound, pred_tissue, ref_tissue, tissue_classes, sample_ids)
    wound, tissue = _score(*args, distances=False)
    return _pooled_table(wound[0], tissue[0], tissue_classes)


def score_tables(
    pred_wound: LabelMaps,
    ref_wound: LabelMaps,
    pred_tissue: LabelMaps,
    ref_tissue: LabelMaps,
    tissue_classes: Sequence[str],
    sample_ids: Sequence[str],
    distances: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(:func:`per_image_scores`, :func:`pooled_scores`) of the same maps, counted once
    (``distances=False``: no HD95, whose rows are then NaN)."""
    args = (pred_wound, ref_wound, pred_tissue, ref_tissue, tissue_classes, sample_ids)
    wound, tissue = _score(*args, distances=distances)
    return (
        _per_image_table(wound, tissue, tissue_classes, sample_ids),
        _pooled_table(wound[0], tissue[0], tissue_classes),
    )


def _sorted(
    frame: pd.DataFrame,
    by: list[str],
    sample_order: list[str] | None,
    tissue_classes: Sequence[str],
) -> pd.DataFrame:
    """Stable order: samples as given, targets wound / classes / tissue_mean, metrics as listed."""
    order = {t: i for i, t in enumerate([WOUND, *tissue_classes, TISSUE_MEAN])}
    keys = {
        "target": frame["target"].map(order),
        "metric": frame["metric"].map({m: i for i, m in enumerate(METRICS)}),
    }
    if sample_order is not None:
        keys["sample_id"] = frame["sample_id"].map({s: i for i, s in enumerate(sample_order)})
    ranked = pd.DataFrame({k: keys[k] for k in by})
    index = ranked.sort_values(by, kind="stable").index
    out = frame.loc[index].reset_index(drop=True)
    out["value"] = out["value"].astype(float)
    return out
