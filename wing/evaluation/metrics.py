"""Per-image and pooled Dice / IoU / precision / recall for the wound and wound-tissue tasks.

The overlap itself is computed by MONAI (``compute_dice`` / ``compute_iou`` per image,
``get_confusion_matrix`` + ``compute_confusion_matrix_metric`` when pooling); this module only
turns label maps into one-hot tensors, applies the ignore index and the empty-reference
conventions, and returns tidy tables.

Conventions (the same in :func:`per_image_scores` and :func:`pooled_scores`):

* Label maps are integer arrays of shape ``(N, H, W)``. Wound maps hold {0, 1}; tissue maps hold
  0..K where 0 is "no tissue" and ``i`` is ``tissue_classes[i - 1]``.
* Reference pixels equal to :data:`IGNORE_INDEX` (255) are removed from both the prediction and
  the reference before scoring, for every class (and for the wound map too, if present there).
* A tissue class is scored only where it is present in the reference (MONAI ``ignore_empty=True``):
  an image (or, pooled, the whole set) without that class gets NaN, so it drops out of means.
  A prediction of a class that is absent from the reference is therefore not penalised in that
  class's score (it still lowers the score of the class it overwrote, if that one is present).
* ``tissue_mean`` is the mean over the tissue classes scored on that image (NaN if none).
* Wound: a prediction on an empty reference scores 0; if reference and prediction are both empty
  the score is NaN (undefined), not 1.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from monai.metrics import (
    compute_confusion_matrix_metric,
    compute_dice,
    compute_iou,
    get_confusion_matrix,
)

IGNORE_INDEX = 255
METRICS = ("dice", "iou", "precision", "recall")
WOUND = "wound"
TISSUE_MEAN = "tissue_mean"
SCORE_COLUMNS = ["sample_id", "target", "metric", "value"]
POOLED_COLUMNS = ["target", "metric", "value"]
_CHUNK = 16  # images per MONAI call; bounds the one-hot memory


def _as_labels(x: np.ndarray | torch.Tensor, name: str) -> torch.Tensor:
    """Return ``x`` as a CPU int64 tensor of shape (N, H, W)."""
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
    t = t.detach().cpu().long()
    if t.ndim != 3:
        raise ValueError(f"{name} must have shape (N, H, W), got {tuple(t.shape)}")
    return t


def _one_hot(
    labels: torch.Tensor, num_classes: int, valid: torch.Tensor, name: str
) -> torch.Tensor:
    """One-hot (N, C, H, W) float tensor of labels 0..C-1, all-zero where ``valid`` is False."""
    bad = valid & ((labels < 0) | (labels >= num_classes))
    if bool(bad.any()):
        found = sorted(set(labels[bad].unique().tolist()))
        raise ValueError(f"{name} has labels outside 0..{num_classes - 1}: {found}")
    safe = torch.where(valid, labels, torch.zeros_like(labels))
    oh = torch.nn.functional.one_hot(safe, num_classes).permute(0, 3, 1, 2)
    return (oh * valid.unsqueeze(1)).float()


def _prepare(
    pred: np.ndarray | torch.Tensor, ref: np.ndarray | torch.Tensor, num_classes: int, name: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """One-hot prediction and reference with the reference's ignored pixels zeroed in both."""
    p, r = _as_labels(pred, f"pred_{name}"), _as_labels(ref, f"ref_{name}")
    if p.shape != r.shape:
        raise ValueError(f"pred_{name} {tuple(p.shape)} and ref_{name} {tuple(r.shape)} differ")
    valid = r != IGNORE_INDEX
    return _one_hot(p, num_classes, valid, f"pred_{name}"), _one_hot(r, num_classes, valid, name)


def _per_image(
    pred_oh: torch.Tensor, ref_oh: torch.Tensor, ignore_empty: bool
) -> dict[str, np.ndarray]:
    """MONAI Dice, IoU, precision and recall per image and foreground class: (N, C - 1) each.

    Precision and recall follow the same empty-reference rule as Dice with ``ignore_empty``:
    NaN where the reference lacks the class.
    """
    dice, iou, counts = [], [], []
    for start in range(0, pred_oh.shape[0], _CHUNK):
        p, r = pred_oh[start : start + _CHUNK], ref_oh[start : start + _CHUNK]
        dice.append(compute_dice(p, r, include_background=False, ignore_empty=ignore_empty))
        iou.append(compute_iou(p, r, include_background=False, ignore_empty=ignore_empty))
        counts.append(get_confusion_matrix(p, r, include_background=False).double())
    cm = torch.cat(counts)  # (N, C - 1, 4): tp, fp, tn, fn
    absent = (cm[..., 0] + cm[..., 3] == 0).numpy()
    out = {"dice": torch.cat(dice).double().numpy(), "iou": torch.cat(iou).double().numpy()}
    for metric, name in (("precision", "precision"), ("recall", "sensitivity")):
        values = compute_confusion_matrix_metric(name, cm).double().numpy()
        out[metric] = np.where(absent, np.nan, values) if ignore_empty else values
    return out


def _pooled_confusion(pred_oh: torch.Tensor, ref_oh: torch.Tensor) -> torch.Tensor:
    """Foreground confusion counts (C - 1, 4) = [tp, fp, tn, fn] summed over all images."""
    total = None
    for start in range(0, pred_oh.shape[0], _CHUNK):
        p, r = pred_oh[start : start + _CHUNK], ref_oh[start : start + _CHUNK]
        cm = get_confusion_matrix(p, r, include_background=False).double().sum(dim=0)
        total = cm if total is None else total + cm
    return total


def _pooled_metrics(cm: torch.Tensor) -> dict[str, np.ndarray]:
    """Pooled Dice (MONAI "f1 score"), IoU ("threat score"), precision and recall
    ("sensitivity") per class from counts."""
    return {
        "dice": compute_confusion_matrix_metric("f1 score", cm).numpy(),
        "iou": compute_confusion_matrix_metric("threat score", cm).numpy(),
        "precision": compute_confusion_matrix_metric("precision", cm).numpy(),
        "recall": compute_confusion_matrix_metric("sensitivity", cm).numpy(),
    }


def _wound_both_empty(pred_oh: torch.Tensor, ref_oh: torch.Tensor) -> np.ndarray:
    """Per image: True where the wound reference and prediction are both empty."""
    fg_ref = ref_oh[:, 1].flatten(1).sum(dim=1)
    fg_pred = pred_oh[:, 1].flatten(1).sum(dim=1)
    return ((fg_ref == 0) & (fg_pred == 0)).numpy()


def _prepare_tasks(pred_wound, ref_wound, pred_tissue, ref_tissue, tissue_classes, sample_ids):
    """One-hot (pred, ref) of both tasks, after checking counts, classes and sample ids."""
    pw, rw = _prepare(pred_wound, ref_wound, 2, "wound")
    pt, rt = _prepare(pred_tissue, ref_tissue, len(tissue_classes) + 1, "tissue")
    if pw.shape[0] != pt.shape[0]:
        raise ValueError(f"{pw.shape[0]} wound maps but {pt.shape[0]} tissue maps")
    _check_inputs(pw.shape[0], tissue_classes, sample_ids)
    return pw, rw, pt, rt


def _check_inputs(n_images: int, tissue_classes: Sequence[str], sample_ids: Sequence[str]) -> None:
    if len(sample_ids) != n_images:
        raise ValueError(f"{len(sample_ids)} sample_ids for {n_images} images")
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


def per_image_scores(
    pred_wound: np.ndarray | torch.Tensor,
    ref_wound: np.ndarray | torch.Tensor,
    pred_tissue: np.ndarray | torch.Tensor,
    ref_tissue: np.ndarray | torch.Tensor,
    tissue_classes: Sequence[str],
    sample_ids: Sequence[str],
) -> pd.DataFrame:
    """Dice, IoU, precision and recall of every image for the wound, each tissue class and
    ``tissue_mean``.

    Inputs are (N, H, W) label maps (see the module docstring for values, the ignore index 255
    and the empty-reference conventions). Returns a tidy frame with columns
    ``sample_id, target, metric, value``; targets are ``wound``, each tissue class, then
    ``tissue_mean``; metrics are ``dice`` and ``iou``. Computed with MONAI ``compute_dice`` and
    ``compute_iou`` on one-hot tensors (Dice 1945 / Jaccard 1912 overlap).
    """
    pw, rw, pt, rt = _prepare_tasks(
        pred_wound, ref_wound, pred_tissue, ref_tissue, tissue_classes, sample_ids
    )

    wound = _per_image(pw, rw, ignore_empty=False)
    both_empty = _wound_both_empty(pw, rw)
    tissue = _per_image(pt, rt, ignore_empty=True)

    ids = np.asarray([str(s) for s in sample_ids], dtype=object)
    frames = []
    for metric in METRICS:
        columns = {WOUND: np.where(both_empty, np.nan, wound[metric][:, 0])}
        columns.update({name: tissue[metric][:, i] for i, name in enumerate(tissue_classes)})
        columns[TISSUE_MEAN] = _tissue_mean(tissue[metric])
        wide = pd.DataFrame(columns)
        wide.insert(0, "sample_id", ids)
        long = wide.melt(id_vars="sample_id", var_name="target", value_name="value")
        long.insert(2, "metric", metric)
        frames.append(long)
    out = pd.concat(frames, ignore_index=True)
    return _sorted(out, ["sample_id", "target", "metric"], list(ids), tissue_classes)


def pooled_scores(
    pred_wound: np.ndarray | torch.Tensor,
    ref_wound: np.ndarray | torch.Tensor,
    pred_tissue: np.ndarray | torch.Tensor,
    ref_tissue: np.ndarray | torch.Tensor,
    tissue_classes: Sequence[str],
    sample_ids: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Dice, IoU, precision and recall pooled over all (non-ignored) pixels, per target.

    True/false positives and false negatives are summed over the whole set before forming
    Dice = 2TP / (2TP + FP + FN) and IoU = TP / (TP + FP + FN) (MONAI ``get_confusion_matrix`` and
    ``compute_confusion_matrix_metric``). A tissue class absent from every reference is NaN;
    the wound is NaN if no image has a wound in reference or prediction. ``tissue_mean`` is the
    mean of the pooled per-class scores that are defined. Returns ``target, metric, value``,
    one row per target and metric. ``sample_ids`` is accepted for symmetry and only checked.
    """
    if sample_ids is None:
        sample_ids = [str(i) for i in range(len(pred_wound))]
    pw, rw, pt, rt = _prepare_tasks(
        pred_wound, ref_wound, pred_tissue, ref_tissue, tissue_classes, sample_ids
    )

    wound = _pooled_metrics(_pooled_confusion(pw, rw))
    cm_tissue = _pooled_confusion(pt, rt)
    tissue = _pooled_metrics(cm_tissue)
    absent = (cm_tissue[:, 0] + cm_tissue[:, 3] == 0).numpy()  # tp + fn == 0

    rows = []
    for metric in METRICS:
        per_class = np.where(absent, np.nan, tissue[metric])
        rows.append((WOUND, metric, float(wound[metric][0])))
        rows.extend((name, metric, float(per_class[i])) for i, name in enumerate(tissue_classes))
        rows.append((TISSUE_MEAN, metric, float(_tissue_mean(per_class[None, :])[0])))
    out = pd.DataFrame(rows, columns=POOLED_COLUMNS)
    return _sorted(out, ["target", "metric"], None, tissue_classes)


def _sorted(
    frame: pd.DataFrame,
    by: list[str],
    sample_order: list[str] | None,
    tissue_classes: Sequence[str],
) -> pd.DataFrame:
    """Stable order: samples as given, targets wound / classes / tissue_mean, dice before iou."""
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
