"""Patient-level paired comparisons, summaries, Delta-MTL and convergence (wing.statistics)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from wing.statistics.convergence import (
    CONVERGENCE_COMPARISON_COLUMNS,
    convergence_comparison,
    convergence_epoch,
    convergence_summary,
    convergence_table,
)
from wing.statistics.paired import (
    COMPARISON_COLUMNS,
    PATIENT_COLUMNS,
    SUMMARY_COLUMNS,
    balancing_pairs,
    bootstrap_mean_ci,
    bootstrap_median_ci,
    compare_to_reference,
    delta_mtl,
    gradnorm_additions,
    holm,
    paired_comparison,
    patient_level,
    rank_biserial,
    seed_averaged,
    summary_table,
)

N_BOOT = 500  # enough for the checks below, keeps the suite fast
# Differences from scipy.stats.wilcoxon's docs (Fisher's plant heights): T = 24, p = 0.0413.
FISHER_D = np.array([6, 8, 14, 16, 23, 24, 28, 29, 41, -48, 49, 56, 60, -67, 75], dtype=float)


def _table(
    values: dict[tuple[str, int], np.ndarray],
    target="wound",
    backbone="unet",
    images_per_patient: int = 1,
    metric: str = "dice",
):
    """Tidy score table from {(method, seed): per-image values}; image i belongs to patient
    i // images_per_patient (default: one image per patient)."""
    rows = []
    for (method, seed), vals in values.items():
        for i, v in enumerate(vals):
            rows.append(
                {
                    "sample_id": f"img{i:03d}",
                    "patient_id": f"pat{i // images_per_patient:02d}",
                    "method": method,
                    "backbone": backbone,
                    "seed": seed,
                    "target": target,
                    "metric": metric,
                    "value": v,
                }
            )
    return pd.DataFrame(rows)


# --- paired_comparison ---------------------------------------------------------------------------


def test_wilcoxon_matches_scipy_docs_example():
    res = paired_comparison(FISHER_D, np.zeros_like(FISHER_D), n_boot=N_BOOT)
    assert res["wilcoxon_statistic"] == 24.0
    assert res["wilcoxon_p"] == pytest.approx(0.041259765625)


def test_paired_comparison_matches_scipy_on_seeded_sample():
    rng = np.random.default_rng(42)
    a = rng.normal(0.8, 0.1, 30)
    b = a - rng.normal(0.03, 0.05, 30)
    res = paired_comparison(a, b, n_boot=N_BOOT, seed=1)
    w, t = stats.wilcoxon(a, b), stats.ttest_rel(a, b)
    d = a - b
    assert res["n"] == 30
    assert res["mean_a"] == pytest.approx(a.mean())
    assert res["mean_b"] == pytest.approx(b.mean())
    assert res["mean_difference"] == pytest.approx(d.mean())
    assert res["wilcoxon_statistic"] == pytest.approx(w.statistic)
    assert res["wilcoxon_p"] == pytest.approx(w.pvalue)
    assert res["ttest_statistic"] == pytest.approx(t.statistic)
    assert res["ttest_p"] == pytest.approx(t.pvalue)
    assert res["cohens_dz"] == pytest.approx(d.mean() / d.std(ddof=1))
    boot = stats.bootstrap((d,), np.mean, n_resamples=N_BOOT, rng=np.random.default_rng(1))
    assert res["ci_low"] == pytest.approx(boot.confidence_interval.low)
    assert res["ci_high"] == pytest.approx(boot.confidence_interval.high)
    assert res["ci_low"] < res["mean_difference"] < res["ci_high"]


def test_paired_comparison_is_seeded():
    rng = np.random.default_rng(0)
    a, b = rng.random(20), rng.random(20)
    assert paired_comparison(a, b, n_boot=N_BOOT, seed=3) == paired_comparison(
        a, b, n_boot=N_BOOT, seed=3
    )


def test_nan_pairs_are_dropped():
    rng = np.random.default_rng(5)
    a, b = rng.random(12), rng.random(12)
    a_nan, b_nan = a.copy(), b.copy()
    a_nan[[1, 4]] = np.nan
    b_nan[7] = np.nan
    keep = np.ones(12, bool)
    keep[[1, 4, 7]] = False
    got = paired_comparison(a_nan, b_nan, n_boot=N_BOOT)
    assert got["n"] == 9
    assert got == paired_comparison(a[keep], b[keep], n_boot=N_BOOT)


def test_all_zero_differences_do_not_crash():
    x = np.array([0.5, 0.6, 0.7, 0.8])
    res = paired_comparison(x, x.copy(), n_boot=N_BOOT)
    assert res["wilcoxon_p"] == 1.0
    assert res["ttest_p"] == 1.0
    assert (res["ci_low"], res["ci_high"]) == (0.0, 0.0)
    assert res["cohens_dz"] == 0.0
    assert res["rank_biserial"] == 0.0


def test_constant_nonzero_difference_gives_point_interval():
    x = np.array([0.5, 0.6, 0.7, 0.8])
    res = paired_comparison(x + 0.1, x, n_boot=N_BOOT)
    assert res["ci_low"] == pytest.approx(0.1)
    assert res["ci_high"] == pytest.approx(0.1)
    assert res["rank_biserial"] == 1.0


def test_rank_biserial_kerby():
    assert rank_biserial(np.arange(1.0, 9.0), np.zeros(8)) == 1.0
    assert rank_biserial(np.zeros(8), np.arange(1.0, 9.0)) == -1.0
    # d = 1, -2, 3, -4, 5: R+ = 1 + 3 + 5 = 9, R- = 2 + 4 = 6, total 15 -> (9 - 6) / 15
    d = np.array([1.0, -2.0, 3.0, -4.0, 5.0])
    assert rank_biserial(d, np.zeros(5)) == pytest.approx(0.2)
    assert paired_comparison(d, np.zeros(5), n_boot=N_BOOT)["rank_biserial"] == pytest.approx(0.2)


# --- bootstrap_mean_ci and Holm ----------------------------------------------------------------


def test_bootstrap_ci_contains_mean_and_shrinks_with_n():
    rng = np.random.default_rng(0)
    small, large = rng.normal(0.7, 0.1, 20), rng.normal(0.7, 0.1, 500)
    m_small, lo_small, hi_small = bootstrap_mean_ci(small, n_boot=N_BOOT)
    m_large, lo_large, hi_large = bootstrap_mean_ci(large, n_boot=N_BOOT)
    assert lo_small < m_small < hi_small
    assert lo_large < m_large < hi_large
    assert m_small == pytest.approx(small.mean())
    assert (hi_large - lo_large) < (hi_small - lo_small) / 2


def test_bootstrap_ci_edge_cases():
    assert bootstrap_mean_ci([0.3, 0.3, 0.3]) == (0.3, 0.3, 0.3)
    assert bootstrap_mean_ci([0.4, np.nan]) == (0.4, 0.4, 0.4)
    mean, low, high = bootstrap_mean_ci([])
    assert np.isnan(mean) and np.isnan(low) and np.isnan(high)


def test_holm_matches_statsmodels_and_keeps_nan():
    p = np.array([0.01, 0.04, 0.03, 0.2, np.nan])
    expected = multipletests(p[:4], method="holm")[1]
    got = holm(p)
    np.testing.assert_allclose(got[:4], expected)
    assert np.isnan(got[4])


# --- compare_to_reference ----------------------------------------------------------------------


def _three_methods(n: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(11)
    base = rng.uniform(0.5, 0.8, n)
    e = rng.uniform(0.005, 0.02, n // 2)
    equal = base + np.concatenate([e, -e])  # symmetric differences: no effect at all
    values = {}
    for seed in range(3):
        values[("gradnorm", seed)] = base + 0.05 + rng.normal(0, 0.005, n)
        values[("stl", seed)] = base + rng.normal(0, 0.005, n)
        values[("ew", seed)] = equal + 0.05 + np.where(np.arange(n) % 2, 1e-4, -1e-4) * seed
    return _table(values)


def test_better_method_significant_equal_method_not():
    out = compare_to_reference(_three_methods(), n_boot=N_BOOT)
    assert list(out.columns) == COMPARISON_COLUMNS
    stl = out[out["method"] == "stl"].iloc[0]
    ew = out[out["method"] == "ew"].iloc[0]
    assert stl["wilcoxon_p"] < 0.01 and stl["ttest_p"] < 0.01
    assert stl["mean_difference"] > 0 and stl["ci_low"] > 0
    assert stl["rank_biserial"] == 1.0
    assert ew["wilcoxon_p"] > 0.05 and ew["ttest_p"] > 0.05
    assert ew["ci_low"] < 0 < ew["ci_high"]


def test_holm_applied_across_the_returned_family():
    scores = pd.concat(
        [_three_methods(), _three_methods().assign(target="tissue_mean")], ignore_index=True
    )
    out = compare_to_reference(scores, n_boot=N_BOOT)
    assert len(out) == 4  # 2 targets x 2 other methods
    for column in ("wilcoxon_p", "ttest_p"):
        expected = multipletests(out[column], method="holm")[1]
        np.testing.assert_allclose(out[f"{column}_holm"], expected)
    only_wound = compare_to_reference(scores, targets=["wound"], n_boot=N_BOOT)
    assert set(only_wound["target"]) == {"wound"}


def test_seeds_are_averaged_before_pairing():
    # Reference has 2 seeds, the other method 3: per image, mean(ref) = 0.5 and mean(other) = 0.6,
    # although the reference wins on seed 0 of every image.
    n = 10
    values = {
        ("gradnorm", 0): np.full(n, 1.0),
        ("gradnorm", 1): np.full(n, 0.0),
        ("stl", 0): np.full(n, 0.6),
        ("stl", 1): np.full(n, 0.5),
        ("stl", 2): np.full(n, 0.7),
    }
    values[("gradnorm", 0)] = values[("gradnorm", 0)] + np.linspace(0, 0.01, n)
    out = compare_to_reference(_table(values), n_boot=N_BOOT).iloc[0]
    ref_avg = (values[("gradnorm", 0)] + values[("gradnorm", 1)]) / 2
    assert out["n"] == n
    assert out["mean_reference"] == pytest.approx(ref_avg.mean())
    assert out["mean_method"] == pytest.approx(0.6)
    assert out["mean_difference"] == pytest.approx(ref_avg.mean() - 0.6)
    assert out["wilcoxon_p"] == pytest.approx(stats.wilcoxon(ref_avg, np.full(n, 0.6)).pvalue)


def test_missing_images_and_nan_are_unpaired():
    n = 12
    rng = np.random.default_rng(2)
    values = {("gradnorm", 0): rng.random(n), ("stl", 0): rng.random(n)}
    values[("stl", 0)][3] = np.nan
    scores = _table(values)
    scores = scores[~((scores["method"] == "gradnorm") & (scores["sample_id"] == "img005"))]
    out = compare_to_reference(scores, n_boot=N_BOOT).iloc[0]
    assert out["n"] == n - 2


def test_unknown_reference_raises():
    with pytest.raises(ValueError, match="reference"):
        compare_to_reference(_three_methods(), reference="nope", n_boot=N_BOOT)


def test_patient_level_averages_seeds_then_images():
    values = {
        ("stl", 0): np.array([0.2, 0.4, 0.6, 0.8, 0.5, np.nan]),
        ("stl", 1): np.array([0.4, 0.6, 0.8, 1.0, 0.7, np.nan]),
    }
    out = patient_level(_table(values, images_per_patient=3))
    assert list(out.columns) == PATIENT_COLUMNS
    by_patient = out.set_index("patient_id")
    # pat00: images 0.3, 0.5, 0.7 -> 0.5; pat01: 0.9, 0.6 and a NaN image -> 0.75 over 2 images
    assert by_patient.loc["pat00", "value"] == pytest.approx(0.5)
    assert by_patient.loc["pat01", "value"] == pytest.approx(0.75)
    assert list(by_patient["n_images"]) == [3, 2]


def _six_patients_by_four(patient_differences, noise=0.0, seed=0):
    """6 patients x 4 images, 2 seeds: stl = base, gradnorm = base + the patient's difference."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(0.5, 0.8, 24)
    d = np.repeat(np.asarray(patient_differences, dtype=float), 4) + rng.normal(0, noise, 24)
    values = {("stl", s): base for s in range(2)} | {("gradnorm", s): base + d for s in range(2)}
    return _table(values, images_per_patient=4), d


def test_pairs_on_patients_and_reports_both_counts():
    scores, d = _six_patients_by_four([0.05, 0.04, 0.06, 0.03, 0.05, 0.04], noise=0.005)
    out = compare_to_reference(scores, n_boot=N_BOOT).iloc[0]
    assert out["unit"] == "patient"
    assert (out["n"], out["n_patients"], out["n_images"]) == (6, 6, 24)
    per_patient = d.reshape(6, 4).mean(axis=1)
    assert out["mean_difference"] == pytest.approx(per_patient.mean())
    assert out["median_difference"] == pytest.approx(np.median(per_patient))
    assert out["ttest_p"] == pytest.approx(stats.ttest_1samp(per_patient, 0).pvalue)
    assert out["wilcoxon_p"] == pytest.approx(stats.wilcoxon(per_patient).pvalue)
    image = compare_to_reference(scores, n_boot=N_BOOT, unit="image").iloc[0]
    assert (image["unit"], image["n"], image["n_patients"], image["n_images"]) == (
        "image",
        24,
        6,
        24,
    )


def test_image_pairing_significant_where_patient_pairing_is_not():
    # Four correlated images per patient make 24 "units" out of 6 patients.
    scores, _ = _six_patients_by_four([0.05, 0.04, 0.06, -0.04, 0.03, -0.02], noise=0.002)
    patient = compare_to_reference(scores, n_boot=N_BOOT).iloc[0]
    image = compare_to_reference(scores, n_boot=N_BOOT, unit="image").iloc[0]
    assert image["ttest_p"] < 0.05
    assert patient["ttest_p"] > 0.05
    assert patient["ci_low"] < 0 < patient["ci_high"]


def test_images_are_paired_before_patients_are_averaged():
    scores, _ = _six_patients_by_four([0.05] * 6)
    drop = (scores["method"] == "stl") & (scores["sample_id"] == "img001")
    out = compare_to_reference(scores[~drop], n_boot=N_BOOT).iloc[0]
    assert (out["n_patients"], out["n_images"]) == (6, 23)
    assert out["mean_difference"] == pytest.approx(0.05)


def test_median_difference_and_its_interval():
    rng = np.random.default_rng(4)
    d = rng.normal(0.02, 0.05, 25)
    res = paired_comparison(d, np.zeros_like(d), n_boot=N_BOOT, seed=2)
    assert res["median_difference"] == pytest.approx(np.median(d))
    assert res["median_ci_low"] <= res["median_difference"] <= res["median_ci_high"]
    boot = stats.bootstrap(
        (d,), np.median, n_resamples=N_BOOT, method="percentile", rng=np.random.default_rng(2)
    )
    assert res["median_ci_low"] == pytest.approx(boot.confidence_interval.low)
    assert bootstrap_median_ci([0.1, 0.1]) == (0.1, 0.1, 0.1)


def test_hd95_differences_are_oriented_towards_the_reference():
    n = 10
    stl = np.linspace(10.0, 20.0, n)
    values = {("gradnorm", 0): stl - 2.0, ("stl", 0): stl}  # lower distance: reference better
    out = compare_to_reference(_table(values, metric="hd95"), metric="hd95", n_boot=N_BOOT)
    row = out.iloc[0]
    assert not row["higher_is_better"]
    assert row["mean_reference"] == pytest.approx(stl.mean() - 2.0)
    assert row["mean_difference"] == pytest.approx(2.0)
    assert row["median_difference"] == pytest.approx(2.0)
    assert row["rank_biserial"] == 1.0 and row["ttest_statistic"] > 0


def test_checkpoint_filter_and_old_tables():
    best = _table({("gradnorm", 0): np.full(6, 0.9), ("stl", 0): np.full(6, 0.5)})
    last = best.assign(value=0.1)
    both = pd.concat([best.assign(checkpoint="best"), last.assign(checkpoint="last")])
    assert seed_averaged(both)["value"].tolist() == seed_averaged(best)["value"].tolist()
    out = compare_to_reference(both, n_boot=N_BOOT).iloc[0]
    assert out["mean_difference"] == pytest.approx(0.4)
    assert compare_to_reference(both, n_boot=N_BOOT, checkpoint="last").iloc[0][
        "mean_difference"
    ] == pytest.approx(0.0)
    with pytest.raises(ValueError, match="checkpoint"):
        compare_to_reference(best, n_boot=N_BOOT, checkpoint="last")


def test_patient_unit_needs_patient_ids():
    scores = _table({("gradnorm", 0): np.full(4, 0.9), ("stl", 0): np.full(4, 0.5)})
    scores = scores.drop(columns="patient_id")
    with pytest.raises(ValueError, match="patient_id"):
        compare_to_reference(scores, n_boot=N_BOOT)
    out = compare_to_reference(scores, n_boot=N_BOOT, unit="image").iloc[0]
    assert out["n"] == 4 and pd.isna(out["n_patients"])


# --- summary_table and delta_mtl ---------------------------------------------------------------


def test_summary_table_seed_and_image_statistics():
    values = {
        ("stl", 0): np.array([0.2, 0.4, 0.6]),
        ("stl", 1): np.array([0.4, 0.6, 0.8]),
        ("stl", 2): np.array([0.3, 0.5, np.nan]),
    }
    out = summary_table(_table(values), n_boot=N_BOOT)
    assert list(out.columns) == SUMMARY_COLUMNS
    row = out.iloc[0]
    per_image = np.array([0.3, 0.5, 0.7])  # seed-averaged, NaN seed skipped
    seed_means = np.array([0.4, 0.6, 0.4])
    assert row["n_images"] == 3 and row["n_patients"] == 3
    assert row["mean"] == pytest.approx(per_image.mean())
    assert row["ci_low"] <= row["mean"] <= row["ci_high"]
    assert row["n_seeds"] == 3
    assert row["seed_mean"] == pytest.approx(seed_means.mean())
    assert row["seed_sd"] == pytest.approx(seed_means.std(ddof=1))


def test_delta_mtl_hand_computed():
    def scores(method: str, wound: float, tissue: float) -> pd.DataFrame:
        return pd.concat(
            [
                _table({(method, 0): np.full(4, wound)}),
                _table({(method, 0): np.full(4, tissue)}, target="tissue_mean"),
            ]
        )

    table = pd.concat(
        [
            scores("stl", 0.8, 0.5),
            scores("ew", 0.88, 0.45),  # +10 %, -10 % -> 0
            scores("gradnorm", 0.88, 0.6),  # +10 %, +20 % -> 15
        ],
        ignore_index=True,
    )
    out = delta_mtl(table).set_index("method")
    assert list(out.index) == ["stl", "ew", "gradnorm"]
    assert out.loc["stl", "delta_mtl"] == 0.0
    assert out.loc["ew", "delta_mtl"] == pytest.approx(0.0)
    assert out.loc["gradnorm", "delta_mtl"] == pytest.approx(15.0)
    assert out.loc["gradnorm", "delta_tissue_mean"] == pytest.approx(20.0)
    assert out.loc["gradnorm", "delta_mtl_ci_low"] == pytest.approx(15.0)  # constant images
    assert out.loc["stl", "delta_mtl_ci_high"] == 0.0


def test_delta_mtl_patient_bootstrap_interval():
    rng = np.random.default_rng(8)
    n_patients, targets = 8, ("wound", "tissue_mean")
    parts, truth = [], {}
    for target, level in zip(targets, (0.8, 0.5), strict=True):
        stl = rng.uniform(level - 0.1, level + 0.1, 2 * n_patients)  # 2 images per patient
        ours = stl * 1.1 + rng.normal(0, 0.02, stl.size)
        values = {("stl", 0): stl, ("gradnorm", 0): ours}
        parts.append(_table(values, target=target, images_per_patient=2))
        truth[target] = (stl.reshape(-1, 2).mean(1), ours.reshape(-1, 2).mean(1))
    scores = pd.concat(parts, ignore_index=True)
    out = delta_mtl(scores, n_boot=N_BOOT, seed=3).set_index("method")
    row = out.loc["gradnorm"]
    assert row["n_patients"] == n_patients
    # the same bootstrap by hand: one draw of patients for both methods and targets
    draws = np.random.default_rng(3).integers(0, n_patients, (N_BOOT, n_patients))
    gains = [
        100 * (truth[t][1][draws].mean(1) - truth[t][0][draws].mean(1)) / truth[t][0][draws].mean(1)
        for t in targets
    ]
    low, high = np.quantile(np.mean(gains, axis=0), [0.025, 0.975])
    assert row["delta_mtl_ci_low"] == pytest.approx(low)
    assert row["delta_mtl_ci_high"] == pytest.approx(high)
    assert 0 < row["delta_mtl_ci_low"] < row["delta_mtl"] < row["delta_mtl_ci_high"]
    again = delta_mtl(scores, n_boot=N_BOOT, seed=3).set_index("method")
    assert again.loc["gradnorm", "delta_mtl_ci_low"] == row["delta_mtl_ci_low"]


def test_delta_mtl_flips_the_sign_for_hd95():
    def scores(method: str, wound: float, tissue: float) -> pd.DataFrame:
        return pd.concat(
            [
                _table({(method, 0): np.full(4, wound)}, metric="hd95"),
                _table({(method, 0): np.full(4, tissue)}, target="tissue_mean", metric="hd95"),
            ]
        )

    table = pd.concat([scores("stl", 10.0, 20.0), scores("gradnorm", 9.0, 18.0)])
    out = delta_mtl(table, metric="hd95", n_boot=N_BOOT).set_index("method")
    assert out.loc["gradnorm", "delta_mtl"] == pytest.approx(10.0)  # 10 % smaller distances


# --- convergence -------------------------------------------------------------------------------


def test_convergence_epoch():
    assert convergence_epoch([3.0, 2.0, 1.0, 2.0]) == 3
    assert convergence_epoch([2.0, 1.0, 1.0, 1.5]) == 2  # first minimum on ties
    assert convergence_epoch([np.nan, 2.0, 1.0]) == 3
    # within 5 % of the minimum 0.49 (<= 0.5145): epoch 2 already qualifies
    assert convergence_epoch([1.0, 0.5, 0.505, 0.5, 0.49], tolerance=0.05) == 2
    assert convergence_epoch([1.0, 0.5, 0.505, 0.5, 0.49], tolerance=0.0) == 5
    assert convergence_epoch([-1.0, -2.0, -2.05], tolerance=0.05) == 2  # relative to |min|
    with pytest.raises(ValueError):
        convergence_epoch([])
    with pytest.raises(ValueError):
        convergence_epoch([1.0], tolerance=-1)


def _history(curves: dict[tuple[str, int, str], list[float]], first_epoch: int = 1):
    rows = []
    for (method, seed, task), losses in curves.items():
        for i, loss in enumerate(losses):
            rows.append(
                {
                    "method": method,
                    "backbone": "unet",
                    "seed": seed,
                    "epoch": first_epoch + i,
                    "task": task,
                    "val_loss": loss,
                }
            )
    return pd.DataFrame(rows)


def test_convergence_table_and_summary():
    history = _history(
        {
            ("gradnorm", 0, "wound"): [3.0, 2.0, 1.0, 1.5],
            ("gradnorm", 0, "tissue"): [4.0, 3.0, 2.5, 2.8],
            ("ew", 0, "wound"): [3.0, 1.0, 2.0, 2.5],
            ("ew", 0, "tissue"): [4.0, 3.0, 2.6, 2.5],
        }
    )
    out = convergence_table(history.sample(frac=1.0, random_state=0)).set_index("method")
    assert out.loc["gradnorm", "wound_epoch"] == 3
    assert out.loc["gradnorm", "tissue_epoch"] == 3
    assert out.loc["gradnorm", "epoch_gap"] == 0
    assert out.loc["ew", "wound_epoch"] == 2
    assert out.loc["ew", "tissue_epoch"] == 4
    assert out.loc["ew", "epoch_gap"] == 2
    assert out.loc["ew", "tissue_min_loss"] == 2.5
    summary = convergence_summary(out.reset_index()).set_index("method")
    assert summary.loc["gradnorm", "same_epoch_rate"] == 1.0
    assert summary.loc["ew", "mean_gap"] == 2.0


def test_convergence_table_uses_logged_epoch_numbers_and_missing_tasks():
    history = _history({("stl", 0, "wound"): [2.0, 1.0, 3.0]}, first_epoch=5)
    out = convergence_table(history).iloc[0]
    assert out["wound_epoch"] == 6
    assert pd.isna(out["tissue_epoch"]) and pd.isna(out["epoch_gap"])


def test_convergence_flags_runs_still_improving_at_the_last_epoch():
    from wing.statistics.convergence import convergence_table

    rows = []
    for epoch, (wound, tissue) in enumerate([(3, 3), (2, 2.5), (1, 2.0), (1.5, 1.0)], start=1):
        rows += [
            {
                "method": "gradnorm",
                "backbone": "b",
                "seed": 0,
                "epoch": epoch,
                "task": "wound",
                "val_loss": wound,
            },
            {
                "method": "gradnorm",
                "backbone": "b",
                "seed": 0,
                "epoch": epoch,
                "task": "tissue",
                "val_loss": tissue,
            },
        ]
    table = convergence_table(pd.DataFrame(rows))
    assert table.loc[0, "wound_epoch"] == 3 and table.loc[0, "tissue_epoch"] == 4
    assert table.loc[0, "epochs"] == 4 and bool(table.loc[0, "at_last_epoch"])
    assert table.loc[0, "epoch_gap"] == 1


def test_convergence_table_runs_of_different_lengths_and_early_stopping():
    history = _history(
        {
            ("gradnorm", 0, "wound"): [3.0, 2.0, 1.0],  # minimum at its last epoch (3)
            ("gradnorm", 0, "tissue"): [3.0, 2.0, 1.5],
            ("gradnorm", 1, "wound"): [3.0, 2.0, 1.0, 1.5, 1.6, 1.7],
            ("gradnorm", 1, "tissue"): [3.0, 1.0, 1.5, 1.6, 1.7, 1.8],
        }
    )
    out = convergence_table(history).set_index("seed")
    assert list(out["epochs"]) == [3, 6]
    assert list(out["at_last_epoch"]) == [True, False]
    assert not out["stopped_early"].any()
    runs = pd.DataFrame(
        {"method": "gradnorm", "backbone": "unet", "seed": [0, 1], "stopped_early": [True, True]}
    )
    stopped = convergence_table(history, runs=runs).set_index("seed")
    assert list(stopped["stopped_early"]) == [True, True]
    # the flag reads the curves only: a minimum at the last epoch is a loss still falling
    # (early stopping leaves `patience` epochs after the minimum, so it never flags such a run)
    assert list(stopped["at_last_epoch"]) == [True, False]
    no_flag = convergence_table(history, runs=runs.drop(columns="stopped_early"))
    assert list(no_flag["at_last_epoch"]) == [True, False]


def _gaps(gaps: dict[tuple[str, int], int]) -> pd.DataFrame:
    """A convergence table with the given |wound - tissue| gaps (wound always at epoch 5)."""
    rows = [
        {
            "method": method,
            "backbone": "unet",
            "seed": seed,
            "wound_epoch": 5,
            "tissue_epoch": 5 + gap,
            "epoch_gap": gap,
            "epochs": 20,
            "stopped_early": True,
            "at_last_epoch": False,
        }
        for (method, seed), gap in gaps.items()
    ]
    return pd.DataFrame(rows).astype({"epoch_gap": "Int64"})


def test_convergence_comparison_pairs_seeds():
    table = _gaps(
        {("gradnorm", 0): 0, ("gradnorm", 1): 1, ("gradnorm", 2): 0, ("ew", 0): 2, ("ew", 1): 1}
    )
    out = convergence_comparison(table, reference="gradnorm", window=1)
    assert list(out.columns) == CONVERGENCE_COMPARISON_COLUMNS
    assert list(out["seed"]) == [0, 1]  # seed 2 has no ew run
    assert list(out["gap_difference"]) == [-2, 0]
    assert set(out["n_seeds"]) == {2}
    assert out["reference_within_window_all"].all()
    strict = convergence_comparison(table, reference="gradnorm", window=0)
    assert list(strict["reference_within_window"]) == [True, False]
    assert not strict["reference_within_window_all"].any()
    assert convergence_comparison(table, reference="nope").empty


# --- does GradNorm add to a seed architecture? ----------------------------------------------------


def test_balancing_pairs_match_architecture_and_options_not_hard_sharing():
    from wing.training.methods import parse_recipe

    raw = {
        "stl": {"balancer": "ew", "per_task_networks": True},
        "ew": {"balancer": "ew"},
        "gradnorm": {"balancer": "gradnorm"},
        "ctan": {"balancer": "ew", "architecture": "ctan", "architecture_options": {"heads": 2}},
        "ctan_gradnorm": {
            "balancer": "gradnorm",
            "architecture": "ctan",
            "architecture_options": {"heads": 2},
        },
        "ctan_wide": {
            "balancer": "ew",
            "architecture": "ctan",
            "architecture_options": {"heads": 4},
        },
        "mt_ids": {"balancer": "dd_gb", "architecture": "mt_ids"},
    }
    recipes = {name: parse_recipe(name, value) for name, value in raw.items()}
    assert balancing_pairs(recipes, list(raw)) == [("ctan_gradnorm", "ctan")]
    assert balancing_pairs(recipes, ["ctan_gradnorm", "mt_ids", "gradnorm", "ew"]) == []


def test_gradnorm_additions_compare_each_pair_only_and_favour_gradnorm_when_positive():
    base = np.linspace(0.5, 0.8, 12)
    table = _table(
        {
            ("ctan_gradnorm", 0): base + 0.05,
            ("ctan", 0): base,
            ("gradnorm", 0): base + 0.5,  # not part of the pair: must not enter
        }
    )
    out = gradnorm_additions(table, [("ctan_gradnorm", "ctan"), ("mt_ids_gradnorm", "mt_ids")])
    assert list(out["with_gradnorm"]) == ["ctan_gradnorm"]
    assert list(out["method"]) == ["ctan"]
    assert out.loc[0, "mean_difference"] == pytest.approx(0.05)
    assert gradnorm_additions(table, []).empty
