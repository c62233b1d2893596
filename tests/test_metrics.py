"""Per-image and pooled scores (wing.evaluation.metrics) on hand-computed label maps.

Checks the overlap scores, the one empty-mask convention of both tasks (nnU-Net's), HD95 and
its empty cases, maps of different sizes and pixel-count weighting when pooling.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from wing.evaluation.metrics import (
    IGNORE_INDEX,
    METRICS,
    POOLED_METRICS,
    per_image_scores,
    pooled_scores,
    score_tables,
)

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
    assert list(pd.unique(out["metric"])) == ["dice", "iou", "precision", "recall", "hd95"]


def test_perfect_prediction_scores_one_and_hd95_zero():
    pw, rw, pt, rt = _maps()
    rw[0, :2, :] = 1
    rt[0, 0, :] = 1
    rt[0, 1, :] = 2
    out = _scores(rw.copy(), rw, rt.copy(), rt)
    overlap = out[out["metric"] != "hd95"]
    assert np.allclose(overlap["value"], 1.0)
    assert np.allclose(out.loc[out["metric"] == "hd95", "value"], 0.0)


def test_disjoint_prediction_scores_zero():
    pw, rw, pt, rt = _maps()
    rw[0, 0, :] = 1
    pw[0, 3, :] = 1
    rt[0, 0, :] = 1
    pt[0, 3, :] = 1
    out = _scores(pw, rw, pt, rt)
    for target in ("wound", "granulation", "tissue_mean"):
        for metric in ("dice", "iou", "precision", "recall"):
            assert _value(out, target, metric) == 0.0


# The empty-mask convention, the same for the wound and for a tissue class. Each case puts
# the wound and the granulation class in the same situation on one 6x6 image.
DIAGONAL = math.hypot(6, 6)


def _empty_case(ref_has: bool, pred_has: bool) -> pd.DataFrame:
    pw, rw, pt, rt = _maps(size=6)
    if ref_has:
        rw[0, 1:3, 1:3] = 1
        rt[0, 1:3, 1:3] = 1
    if pred_has:
        pw[0, 3:5, 3:5] = 1
        pt[0, 3:5, 3:5] = 1
    return _scores(pw, rw, pt, rt)


@pytest.mark.parametrize("target", ["wound", "granulation"])
def test_empty_reference_with_prediction_scores_zero(target):
    out = _empty_case(ref_has=False, pred_has=True)
    for metric in ("dice", "iou", "precision"):
        assert _value(out, target, metric) == 0.0
    assert np.isnan(_value(out, target, "recall"))  # no reference pixel to recall
    assert _value(out, target, "hd95") == pytest.approx(DIAGONAL)


@pytest.mark.parametrize("target", ["wound", "granulation"])
def test_both_empty_is_not_counted(target):
    out = _empty_case(ref_has=False, pred_has=False)
    for metric in METRICS:
        assert np.isnan(_value(out, target, metric))


@pytest.mark.parametrize("target", ["wound", "granulation"])
def test_empty_prediction_with_reference_scores_zero(target):
    out = _empty_case(ref_has=True, pred_has=False)
    for metric in ("dice", "iou", "precision", "recall"):
        assert _value(out, target, metric) == 0.0  # precision 0, not NaN
    assert _value(out, target, "hd95") == pytest.approx(DIAGONAL)


def test_class_predicted_but_absent_from_reference_counts_in_tissue_mean():
    pw, rw, pt, rt = _maps()
    rt[0, 0, :] = 1
    pt[0, 0, :] = 1
    pt[0, 3, :] = 2  # slough predicted but absent from the reference
    out = _scores(pw, rw, pt, rt)
    assert _value(out, "slough", "dice") == 0.0
    assert _value(out, "granulation", "dice") == 1.0
    assert _value(out, "tissue_mean", "dice") == pytest.approx(0.5)


def test_tissue_mean_averages_counted_classes():
    pw, rw, pt, rt = _maps()
    rt[0, 0, 0:2] = 1  # granulation: perfect -> 1
    pt[0, 0, 0:2] = 1
    rt[0, 2, 0:3] = 2  # slough: 3 ref, 1 predicted correctly -> 2/4
    pt[0, 2, 0:1] = 2
    out = _scores(pw, rw, pt, rt)
    assert _value(out, "slough", "dice") == pytest.approx(0.5)
    assert _value(out, "tissue_mean", "dice") == pytest.approx((1.0 + 0.5) / 2)
    assert _value(out, "tissue_mean", "iou") == pytest.approx((1.0 + 1 / 3) / 2)


def test_no_tissue_in_reference_or_prediction_gives_nan_mean():
    pw, rw, pt, rt = _maps()
    out = _scores(pw, rw, pt, rt)
    for metric in METRICS:
        assert np.isnan(_value(out, "tissue_mean", metric))


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
    assert _value(out, "granulation", "hd95") == 0.0  # the ignored row has no edge either
    # the same maps with the ignored row cropped away score the same (HD95 aside: the
    # diagonal of an empty-vs-non-empty pair depends on the image size)
    cropped = _scores(pw[:, :3], rw[:, :3], pt[:, :3], rt[:, :3])
    overlap = out["metric"] != "hd95"
    pd.testing.assert_frame_equal(
        out[overlap].reset_index(drop=True), cropped[overlap].reset_index(drop=True)
    )


def test_unannotated_image_is_not_counted():
    pw, rw, pt, rt = _maps()
    rt[:] = IGNORE_INDEX  # a wound-only image: tissue not annotated
    pt[0, 0, :] = 2
    out = _scores(pw, rw, pt, rt)
    assert out.loc[out["target"].isin([*CLASSES, "tissue_mean"]), "value"].isna().all()


def test_hd95_of_squares_offset_by_k_pixels():
    for k in (1, 2, 4):
        pw, rw, pt, rt = _maps(size=40)
        rw[0, 10:20, 10:20] = 1
        pw[0, 10:20, 10 + k : 20 + k] = 1  # the same square, k px to the right
        rt[0, 5:25, 5:25] = 1
        pt[0, 5 + k : 25 + k, 5:25] = 1  # granulation moved down by k px
        out = _scores(pw, rw, pt, rt)
        assert _value(out, "wound", "hd95") == pytest.approx(k)
        assert _value(out, "granulation", "hd95") == pytest.approx(k)


def test_hd95_ignores_an_outlier_below_five_percent():
    pw, rw, pt, rt = _maps(size=100)
    rw[0, 10:30, 10:30] = 1  # 76 edge pixels
    pw[0, 10:30, 10:30] = 1
    pw[0, 80, 80] = 1  # one stray pixel about 72 px away: 1 of 77 predicted edge pixels
    out = _scores(pw, rw, pt, rt)
    assert _value(out, "wound", "hd95") == pytest.approx(0.0)


def test_hd95_is_in_pixels_of_a_non_square_image():
    pw, rw, pt, rt = (np.zeros((1, 30, 70), dtype=np.int64) for _ in range(4))
    rw[0, 5:15, 5:15] = 1
    pw[0, 5:15, 8:18] = 1
    rt[0, 5:15, 5:15] = 1  # granulation not predicted: the image diagonal
    out = _scores(pw, rw, pt, rt)
    assert _value(out, "wound", "hd95") == pytest.approx(3.0)
    assert _value(out, "granulation", "hd95") == pytest.approx(math.hypot(30, 70))


def test_maps_of_different_sizes():
    sizes = [(5, 7), (12, 3), (4, 4)]
    rng = np.random.default_rng(0)
    maps = [[rng.integers(0, k, size=s) for s in sizes] for k in (2, 2, 3, 3)]
    out = _scores(*maps)
    for i, _ in enumerate(sizes):
        alone = _scores(*([m[i]] for m in maps), ids=[f"s{i}"])
        pd.testing.assert_frame_equal(
            out[out["sample_id"] == f"s{i}"].reset_index(drop=True), alone
        )


def test_list_and_array_inputs_agree():
    rng = np.random.default_rng(1)
    maps = [rng.integers(0, k, size=(3, 8, 8)) for k in (2, 2, 3, 3)]
    a = _scores(*maps)
    pd.testing.assert_frame_equal(a, _scores(*(torch.as_tensor(m) for m in maps)))
    pd.testing.assert_frame_equal(a, _scores(*(list(m) for m in maps)))


def _reference_dice(pred: np.ndarray, ref: np.ndarray, cls: int) -> float:
    """nnU-Net's Dice: NaN if both are empty, else 2TP / (|pred| + |ref|)."""
    valid = ref != IGNORE_INDEX
    p, r = (pred == cls) & valid, (ref == cls) & valid
    total = p.sum() + r.sum()
    return np.nan if total == 0 else 2 * (p & r).sum() / total


def test_matches_direct_numpy_dice_on_random_maps():
    rng = np.random.default_rng(7)
    n = 5
    pw, rw = rng.integers(0, 2, (n, 12, 12)), rng.integers(0, 2, (n, 12, 12))
    pt, rt = rng.integers(0, 3, (n, 12, 12)), rng.integers(0, 3, (n, 12, 12))
    rt[rng.random((n, 12, 12)) < 0.2] = IGNORE_INDEX
    rt[1][rt[1] == 2] = 0  # slough absent from the reference of image 1 (but predicted)
    pt[2][pt[2] == 2] = 0  # ... and from the prediction of image 2
    rt[2][rt[2] == 2] = 0  # both empty there: not counted
    out = _scores(pw, rw, pt, rt)
    for i in range(n):
        for c, name in enumerate(CLASSES, start=1):
            expected = _reference_dice(pt[i], rt[i], c)
            got = _value(out, name, "dice", f"s{i}")
            assert (np.isnan(expected) and np.isnan(got)) or got == pytest.approx(expected)
        assert _value(out, "wound", "dice", f"s{i}") == pytest.approx(
            _reference_dice(pw[i], rw[i], 1)
        )
    assert _value(out, "slough", "dice", "s1") == 0.0
    assert np.isnan(_value(out, "slough", "dice", "s2"))


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
    assert len(out) == (len(CLASSES) + 2) * len(POOLED_METRICS)
    assert "hd95" not in set(out["metric"])
    assert _value(out, "wound", "dice") == pytest.approx(2 * 6 / (2 * 6 + 1 + 1))
    assert _value(out, "wound", "iou") == pytest.approx(6 / 8)
    assert _value(out, "granulation", "dice") == pytest.approx(2 / 3)
    assert np.isnan(_value(out, "slough", "dice"))  # neither referenced nor predicted
    assert _value(out, "tissue_mean", "dice") == pytest.approx(2 / 3)
    assert _value(out, "wound", "precision") == pytest.approx(6 / 7)  # tp 6, fp 1
    assert _value(out, "wound", "recall") == pytest.approx(6 / 7)  # tp 6, fn 1
    assert _value(out, "granulation", "precision") == pytest.approx(1.0)  # tp 1, fp 0
    assert _value(out, "granulation", "recall") == pytest.approx(0.5)  # tp 1, fn 1
    assert np.isnan(_value(out, "slough", "recall"))


def test_pooled_scores_weight_images_by_pixel_count():
    # A 60x80 image with a 20x30 wound predicted 10 columns too wide, and a 6x6 image whose
    # 2x2 wound is missed: the big image dominates the pooled score.
    pw = [np.zeros((60, 80), int), np.zeros((6, 6), int)]
    rw = [np.zeros_like(m) for m in pw]
    rw[0][10:30, 10:40] = 1
    pw[0][10:30, 10:50] = 1  # tp 600, fp 200
    rw[1][2:4, 2:4] = 1  # fn 4
    pt = [np.zeros_like(m) for m in pw]
    rt = [np.zeros_like(m) for m in rw]
    out = pooled_scores(pw, rw, pt, rt, CLASSES)
    tp, fp, fn = 600, 200, 4
    assert _value(out, "wound", "dice") == pytest.approx(2 * tp / (2 * tp + fp + fn))
    assert _value(out, "wound", "precision") == pytest.approx(tp / (tp + fp))
    assert _value(out, "wound", "recall") == pytest.approx(tp / (tp + fn))
    per_image = _scores(pw, rw, pt, rt)
    mean = per_image.query("target == 'wound' and metric == 'dice'")["value"].mean()
    assert mean == pytest.approx((2 * 600 / 1400 + 0.0) / 2)  # the unweighted mean differs


def test_pooled_empty_convention():
    pw, rw, pt, rt = _maps(n=2)
    pt[0, 0, 0] = 2  # slough predicted, never in a reference -> 0
    rt[1, 0, 0] = 1  # granulation referenced, never predicted -> precision 0
    out = pooled_scores(pw, rw, pt, rt, CLASSES)
    assert _value(out, "slough", "dice") == 0.0
    assert _value(out, "slough", "precision") == 0.0
    assert np.isnan(_value(out, "slough", "recall"))
    assert _value(out, "granulation", "precision") == 0.0
    assert _value(out, "granulation", "recall") == 0.0
    assert np.isnan(_value(out, "wound", "dice"))  # no wound anywhere


def test_pooled_equals_per_image_for_one_image():
    rng = np.random.default_rng(3)
    maps = [rng.integers(0, k, size=(1, 10, 10)) for k in (2, 2, 3, 3)]
    per = _scores(*maps)
    per = per[per["metric"] != "hd95"].drop(columns="sample_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(per, pooled_scores(*maps, CLASSES))


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
    with pytest.raises(ValueError, match="differ"):
        _scores([pw[0]], [rw[0, :3]], [pt[0]], [rt[0]])


def test_score_tables_equal_the_two_functions():
    rng = np.random.default_rng(5)
    maps = [[rng.integers(0, k, size=s) for s in ((6, 9), (8, 5))] for k in (2, 2, 3, 3)]
    per_image, pooled = score_tables(*maps, CLASSES, ["a", "b"])
    pd.testing.assert_frame_equal(per_image, per_image_scores(*maps, CLASSES, ["a", "b"]))
    pd.testing.assert_frame_equal(pooled, pooled_scores(*maps, CLASSES, ["a", "b"]))
