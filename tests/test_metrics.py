"""Per-image and pooled Dice / IoU (wing.evaluation.metrics) on hand-computed label maps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from wing.evaluation.metrics import IGNORE_INDEX, METRICS, per_image_scores, pooled_scores

CLASSES = ["granulation", "slough"]


def _value(frame: pd.DataFrame, target: str, metric: str, sample_id: str | None = None) -> float:
    rows = frame[(frame["target"] == target) & (frame["metric"] == metric)]
    if sample_id is not None:
        rows = rows[rows["sample_id"] == sample_id]
    assert len(rows) == 1
    return float(rows["value"].iloc[0])


def _maps(n: int = 1, size: int = 4) -> tuple[np.ndarray, ...]:
    """Empty prediction/reference wound and tissue maps of shape (n, size, size)."""
    return tuple(np.zeros((n, size, size), dtype=np.int64) for _ in range(4))


def _scores(pw, rw, pt, rt, ids=None) -> pd.DataFrame:
    ids = ids if ids is not None else [f"s{i}" for i in range(len(pw))]
    return per_image_scores(pw, rw, pt, rt, CLASSES, ids)


def test_hand_computed_4x4_dice_and_iou():
    pw, rw, pt, rt = _maps()
    rw[0, 0, 0:3] = 1  # reference: 3 pixels
    pw[0, 0, 1:4] = 1  # prediction: 3 pixels, 2 shared
    rt[0, 1, 0:3] = 1  # granulation: 3 reference pixels
    pt[0, 1, 0:2] = 1  # 2 predicted, both correct
    out = _scores(pw, rw, pt, rt)
    assert _value(out, "wound", "dice") == pytest.approx(2 * 2 / (3 + 3))
    assert _value(out, "wound", "iou") == pytest.approx(2 / 4)
    assert _value(out, "granulation", "dice") == pytest.approx(2 * 2 / (2 + 3))
    assert _value(out, "granulation", "iou") == pytest.approx(2 / 3)


def test_table_layout():
    pw, rw, pt, rt = _maps(n=3)
    rw[:, 0, 0] = 1
    pw[:, 0, 0] = 1
    out = _scores(pw, rw, pt, rt, ids=["c", "a", "b"])
    assert list(out.columns) == ["sample_id", "target", "metric", "value"]
    assert len(out) == 3 * (len(CLASSES) + 2) * len(METRICS)
    assert list(pd.unique(out["sample_id"])) == ["c", "a", "b"]
    assert list(pd.unique(out["target"])) == ["wound", *CLASSES, "tissue_mean"]
    assert set(out["metric"]) == {"dice", "iou", "precision", "recall"}


def test_perfect_prediction_scores_one():
    pw, rw, pt, rt = _maps()
    rw[0, :2, :] = 1
    rt[0, 0, :] = 1
    rt[0, 1, :] = 2
    out = _scores(rw.copy(), rw, rt.copy(), rt)
    assert np.allclose(out["value"], 1.0)


def test_disjoint_prediction_scores_zero():
    pw, rw, pt, rt = _maps()
    rw[0, 0, :] = 1
    pw[0, 3, :] = 1
    rt[0, 0, :] = 1
    pt[0, 3, :] = 1
    out = _scores(pw, rw, pt, rt)
    for target in ("wound", "granulation", "tissue_mean"):
        for metric in ("dice", "iou"):
            assert _value(out, target, metric) == 0.0


def test_class_absent_from_reference_is_nan():
    pw, rw, pt, rt = _maps()
    rt[0, 0, :] = 1
    pt[0, 0, :] = 1
    pt[0, 3, :] = 2  # slough predicted but absent from the reference
    out = _scores(pw, rw, pt, rt)
    assert np.isnan(_value(out, "slough", "dice"))
    assert np.isnan(_value(out, "slough", "iou"))
    assert _value(out, "granulation", "dice") == 1.0
    assert _value(out, "tissue_mean", "dice") == 1.0  # the NaN class is left out of the mean


def test_tissue_mean_averages_present_classes():
    pw, rw, pt, rt = _maps()
    rt[0, 0, 0:2] = 1  # granulation: perfect -> 1
    pt[0, 0, 0:2] = 1
    rt[0, 2, 0:3] = 2  # slough: 3 ref, 1 predicted correctly -> 2/4
    pt[0, 2, 0:1] = 2
    out = _scores(pw, rw, pt, rt)
    assert _value(out, "slough", "dice") == pytest.approx(0.5)
    assert _value(out, "tissue_mean", "dice") == pytest.approx((1.0 + 0.5) / 2)
    assert _value(out, "tissue_mean", "iou") == pytest.approx((1.0 + 1 / 3) / 2)


def test_no_tissue_in_reference_gives_nan_mean():
    pw, rw, pt, rt = _maps()
    pt[0, 0, :] = 1
    out = _scores(pw, rw, pt, rt)
    assert np.isnan(_value(out, "tissue_mean", "dice"))


def test_ignore_index_is_excluded_from_prediction_and_reference():
    pw, rw, pt, rt = _maps()
    rt[0, 0, 0:2] = 1
    pt[0, 0, 0:2] = 1
    rt[0, 3, :] = IGNORE_INDEX
    pt[0, 3, :] = 1  # wrong under the ignored row: must not count as false positives
    rw[0, 3, :] = IGNORE_INDEX
    pw[0, 3, :] = 1
    rw[0, 0, 0] = 1
    pw[0, 0, 0] = 1
    out = _scores(pw, rw, pt, rt)
    assert _value(out, "granulation", "dice") == 1.0
    assert _value(out, "wound", "dice") == 1.0
    # the same maps with the ignored row cropped away score the same
    cropped = _scores(pw[:, :3], rw[:, :3], pt[:, :3], rt[:, :3])
    pd.testing.assert_frame_equal(out, cropped)


def test_wound_empty_conventions():
    pw, rw, pt, rt = _maps(n=2)
    pw[1, 0, 0] = 1  # image 1: empty reference, one false-positive pixel
    out = _scores(pw, rw, pt, rt)
    assert np.isnan(_value(out, "wound", "dice", "s0"))  # both empty
    assert np.isnan(_value(out, "wound", "iou", "s0"))
    assert _value(out, "wound", "dice", "s1") == 0.0
    assert _value(out, "wound", "iou", "s1") == 0.0


def test_torch_and_numpy_inputs_agree():
    rng = np.random.default_rng(1)
    maps = [rng.integers(0, k, size=(3, 8, 8)) for k in (2, 2, 3, 3)]
    a = _scores(*maps)
    b = _scores(*(torch.as_tensor(m) for m in maps))
    pd.testing.assert_frame_equal(a, b)


def _reference_dice(pred: np.ndarray, ref: np.ndarray, cls: int) -> float:
    valid = ref != IGNORE_INDEX
    p, r = (pred == cls) & valid, (ref == cls) & valid
    return np.nan if r.sum() == 0 else 2 * (p & r).sum() / (p.sum() + r.sum())


def test_matches_direct_numpy_dice_on_random_maps():
    rng = np.random.default_rng(7)
    n = 5
    pw, rw = rng.integers(0, 2, (n, 12, 12)), rng.integers(0, 2, (n, 12, 12))
    pt, rt = rng.integers(0, 3, (n, 12, 12)), rng.integers(0, 3, (n, 12, 12))
    rt[rng.random((n, 12, 12)) < 0.2] = IGNORE_INDEX
    rt[1][rt[1] == 2] = 0  # slough absent from image 1
    out = _scores(pw, rw, pt, rt)
    for i in range(n):
        for c, name in enumerate(CLASSES, start=1):
            expected = _reference_dice(pt[i], rt[i], c)
            got = _value(out, name, "dice", f"s{i}")
            assert (np.isnan(expected) and np.isnan(got)) or got == pytest.approx(expected)
        assert _value(out, "wound", "dice", f"s{i}") == pytest.approx(
            _reference_dice(pw[i], rw[i], 1)
        )


def test_pooled_scores_sum_counts_over_images():
    pw, rw, pt, rt = _maps(n=2)
    rw[0, 0, 0:3] = 1  # image 0: tp 2, fp 1, fn 1
    pw[0, 0, 1:4] = 1
    rw[1, 0, 0:4] = 1  # image 1: tp 4
    pw[1, 0, 0:4] = 1
    rt[0, 0, 0:2] = 1  # granulation only in image 0: tp 1, fn 1
    pt[0, 0, 0:1] = 1
    out = pooled_scores(pw, rw, pt, rt, CLASSES)
    assert list(out.columns) == ["target", "metric", "value"]
    assert len(out) == (len(CLASSES) + 2) * len(METRICS)
    assert _value(out, "wound", "dice") == pytest.approx(2 * 6 / (2 * 6 + 1 + 1))
    assert _value(out, "wound", "iou") == pytest.approx(6 / 8)
    assert _value(out, "granulation", "dice") == pytest.approx(2 / 3)
    assert np.isnan(_value(out, "slough", "dice"))
    assert _value(out, "tissue_mean", "dice") == pytest.approx(2 / 3)
    assert _value(out, "wound", "precision") == pytest.approx(6 / 7)  # tp 6, fp 1
    assert _value(out, "wound", "recall") == pytest.approx(6 / 7)  # tp 6, fn 1
    assert _value(out, "granulation", "precision") == pytest.approx(1.0)  # tp 1, fp 0
    assert _value(out, "granulation", "recall") == pytest.approx(0.5)  # tp 1, fn 1
    assert np.isnan(_value(out, "slough", "recall"))


def test_per_image_precision_and_recall():
    pw, rw, pt, rt = _maps(n=1, size=6)
    rw[0, 0, 0:4] = 1  # tp 2 (cols 2-3), fn 2, fp 1 (col 4)
    pw[0, 0, 2:5] = 1
    out = _scores(pw, rw, pt, rt)
    assert _value(out, "wound", "precision") == pytest.approx(2 / 3)
    assert _value(out, "wound", "recall") == pytest.approx(2 / 4)
    assert np.isnan(_value(out, "slough", "precision"))  # absent from the reference


def test_pooled_equals_per_image_for_one_image():
    rng = np.random.default_rng(3)
    maps = [rng.integers(0, k, size=(1, 10, 10)) for k in (2, 2, 3, 3)]
    per = _scores(*maps).drop(columns="sample_id")
    pooled = pooled_scores(*maps, CLASSES)
    pd.testing.assert_frame_equal(per.reset_index(drop=True), pooled)


def test_invalid_inputs_raise():
    pw, rw, pt, rt = _maps()
    bad = pt.copy()
    bad[0, 0, 0] = 7
    with pytest.raises(ValueError, match="outside"):
        _scores(pw, rw, bad, rt)
    with pytest.raises(ValueError, match="sample_ids"):
        per_image_scores(pw, rw, pt, rt, CLASSES, ["a", "b"])
    with pytest.raises(ValueError, match="shape"):
        _scores(pw[0], rw[0], pt[0], rt[0])
