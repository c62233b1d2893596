"""The longitudinal analysis (wing.longitudinal): measures, agreement, healing, PAR4."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from wing.longitudinal import healing
from wing.longitudinal.agreement import (
    AGREEMENT_COLUMNS,
    LOG_AREA,
    agreement_statistics,
    agreement_table,
    cluster_bootstrap,
    icc_absolute_agreement,
    pingouin_icc,
)
from wing.longitudinal.healing import (
    HEALER,
    HEALING_ERROR_COLUMNS,
    MIXEDLM,
    NON_HEALER,
    NOT_ASSESSED,
    PATIENT_OLS,
    TABLES,
    fit_trend,
    healer_agreement,
    healer_call,
    healing_rates,
    longitudinal_tables,
    par4_table,
    percent_area_reduction,
    tissue_trends,
)
from wing.longitudinal.measures import (
    measure_columns,
    measure_table,
    true_healing_rates,
    truth_measures,
    visit_measures,
)

CLASSES = ("granulation", "slough", "necrosis", "epithelium")
N_BOOT = 300


def _cohort(
    n_patients: int = 12,
    days=(0, 14, 28, 42, 56),
    noise: float = 0.0,
    seed: int = 0,
    mean_rate: float = 0.03,
    rate_sd: float = 0.008,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(metadata with true rates, truth measures): area = A0 exp(-rate day) exp(noise) px at
    a spacing of 0.5 mm; granulation's share rises by 0.005 a day at the cost of slough."""
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_patients):
        rate = rng.normal(mean_rate, rate_sd)
        start = rng.uniform(2000, 6000)
        granulation = rng.uniform(0.2, 0.4)
        for v, day in enumerate(days, start=1):
            share = granulation + 0.005 * day
            rows.append(
                {
                    "sample_id": f"P{p:02d}_V{v}",
                    "patient_id": f"P{p:02d}",
                    "visit": v,
                    "visit_day": day,
                    "pixel_spacing_mm": 0.5,
                    "healing_rate_per_day": rate,
                    "true_wound_area_px": start * np.exp(-rate * day + rng.normal(0, noise)),
                    "fraction_granulation": share,
                    "fraction_slough": 0.8 - share,
                    "fraction_necrosis": 0.1,
                    "fraction_epithelium": 0.1,
                }
            )
    metadata = pd.DataFrame(rows)
    return metadata, truth_measures(metadata, CLASSES)


def _as(measures: pd.DataFrame, source: str, **columns) -> pd.DataFrame:
    return measures.assign(source=source, **columns)


# --- measures ------------------------------------------------------------------------------------


def test_visit_measures_count_areas_and_shares_without_ignored_pixels():
    wound = np.zeros((6, 6), np.uint8)
    wound[1:5, 1:5] = 1
    wound[0, 0] = 255
    tissue = np.zeros((6, 6), np.uint8)
    tissue[1:3, 1:5] = 1  # 8 granulation
    tissue[3, 1:5] = 2  # 4 slough
    tissue[4, 1:3] = 255  # unsure: in neither count
    tissue[4, 3:5] = 4  # 2 epithelium
    out = visit_measures(wound, tissue, CLASSES, pixel_spacing_mm=0.5)
    assert out["wound_area_px"] == 16 and out["wound_area_mm2"] == 4.0
    assert out["tissue_area_px"] == 14
    assert out["fraction_granulation"] == pytest.approx(8 / 14)
    assert out["fraction_slough"] == pytest.approx(4 / 14)
    assert out["fraction_necrosis"] == 0 and out["fraction_epithelium"] == pytest.approx(2 / 14)
    bare = visit_measures(np.full((6, 6), 255, np.uint8), np.zeros((6, 6), np.uint8), CLASSES)
    assert np.isnan(bare["wound_area_px"]) and np.isnan(bare["wound_area_mm2"])
    assert np.isnan(bare["fraction_granulation"])  # no tissue pixel: no shares
    assert np.isnan(visit_measures(wound, tissue, CLASSES)["wound_area_mm2"])  # no spacing


def test_measure_table_numbers_visits_by_day_when_the_metadata_has_none():
    wound = np.ones((4, 4), np.uint8)
    tissue = np.ones((4, 4), np.uint8)
    samples = pd.DataFrame(
        {"sample_id": ["a2", "a1", "b1"], "patient_id": ["A", "A", "B"], "visit_day": [30, 0, 5]}
    )
    table = measure_table([wound] * 3, [tissue] * 3, samples, CLASSES, "gradnorm")
    assert list(table.columns) == measure_columns(CLASSES)
    assert list(table["visit"]) == [2.0, 1.0, 1.0]
    assert set(table["source"]) == {"gradnorm"} and table["wound_area_px"].eq(16).all()
    assert table["pixel_spacing_mm"].isna().all()


def test_truth_measures_and_rates_from_metadata():
    metadata, truth = _cohort(n_patients=2, days=(0, 10))
    assert (truth["wound_area_mm2"] == truth["wound_area_px"] * 0.25).all()
    rates = true_healing_rates(metadata)
    assert list(rates.index) == ["P00", "P01"] and rates.gt(0).all()
    assert true_healing_rates(metadata.drop(columns="healing_rate_per_day")).empty


# --- bad input -----------------------------------------------------------------------------------


def test_bad_input_is_refused_with_the_missing_columns_named():
    metadata, truth = _cohort(n_patients=2, days=(0, 10))
    with pytest.raises(ValueError, match=r"\['fraction_slough'\]"):
        truth_measures(metadata.drop(columns="fraction_slough"), CLASSES)
    with pytest.raises(ValueError, match=r"\['patient_id'\]"):
        measure_table([], [], pd.DataFrame({"sample_id": []}), CLASSES, "stl")
    with pytest.raises(ValueError, match="2 wound maps, 1 tissue maps"):
        maps = [np.zeros((2, 2), np.uint8)]
        measure_table(maps * 2, maps, metadata.head(2), CLASSES, "stl")
    with pytest.raises(ValueError, match=r"wound map values \[2\]"):
        visit_measures(np.full((2, 2), 2, np.uint8), np.zeros((2, 2), np.uint8), CLASSES)
    with pytest.raises(ValueError, match=r"tissue map values \[7\]"):
        visit_measures(np.zeros((2, 2), np.uint8), np.full((2, 2), 7, np.uint8), CLASSES)
    with pytest.raises(ValueError, match=r"\['wound_area_px'\]"):
        longitudinal_tables(truth.drop(columns="wound_area_px"))
    with pytest.raises(ValueError, match="no 'reference' rows"):
        longitudinal_tables(truth)
    with pytest.raises(ValueError, match="no 'reference' measures"):
        agreement_table(truth)
    with pytest.raises(ValueError, match=r"\['time'\]"):
        fit_trend(pd.DataFrame({"patient_id": ["a"], "value": [1.0]}))
    with pytest.raises(ValueError, match="positive"):
        percent_area_reduction([0, 28], [10.0, 0.0])


# --- agreement -----------------------------------------------------------------------------------


def test_weighted_statistics_are_those_of_the_repeated_sample():
    rng = np.random.default_rng(0)
    x = rng.normal(size=15)
    y = x + rng.normal(0, 0.5, 15)
    x[3], y[5] = x[4], y[6]  # ties
    counts = rng.integers(0, 4, 15)
    repeated = np.repeat(np.arange(15), counts)
    weighted = agreement_statistics(x, y, counts[None].astype(float))[0]
    np.testing.assert_allclose(weighted, agreement_statistics(x[repeated], y[repeated]))
    plain = agreement_statistics(x, y)
    d = x - y
    assert plain[0] == pytest.approx(d.mean())
    assert plain[2] - plain[0] == pytest.approx(1.96 * d.std(ddof=1))
    assert plain[4] == pytest.approx(stats.pearsonr(x, y)[0])
    assert plain[5] == pytest.approx(stats.spearmanr(x, y)[0])
    assert plain[3] == pytest.approx(pingouin_icc(x, y))  # ICC(A,1) as pingouin computes it


def test_icc_is_absolute_agreement_so_a_constant_bias_lowers_it():
    x = np.linspace(0.0, 1.0, 10)
    assert icc_absolute_agreement(x, x) == pytest.approx(1.0)
    shifted = agreement_statistics(x + 0.3, x)
    assert shifted[4] == pytest.approx(1.0)  # Pearson forgives the bias
    assert shifted[3] < 0.8  # ICC(A,1) does not
    assert shifted[0] == pytest.approx(0.3) and shifted[1] == pytest.approx(0.3)


def test_bootstrap_resamples_patients_not_visits():
    rng = np.random.default_rng(1)
    patients = np.repeat(np.arange(8), 2)
    d = rng.normal(0, 1, 16)
    mean = lambda w: ((w * d).sum(axis=1) / w.sum(axis=1))[:, None]  # noqa: E731
    low, high = cluster_bootstrap(patients, mean, n_boot=N_BOOT, seed=0)
    # Every visit counted three times: the same patients, the same interval.
    tripled = np.repeat(patients, 3)
    d_tripled = np.repeat(d, 3)
    mean3 = lambda w: ((w * d_tripled).sum(axis=1) / w.sum(axis=1))[:, None]  # noqa: E731
    low3, high3 = cluster_bootstrap(tripled, mean3, n_boot=N_BOOT, seed=0)
    np.testing.assert_allclose([low3, high3], [low, high])
    one = cluster_bootstrap(np.zeros(4), lambda w: w[:, :1], n_boot=N_BOOT)
    assert np.isnan(one[0]).all()  # one patient: no interval


def test_agreement_table_reads_a_bias_on_the_log_scale():
    _, truth = _cohort(n_patients=6, days=(0, 14, 28))
    reference = _as(truth, "reference")
    larger = _as(truth, "stl", wound_area_px=truth["wound_area_px"] * 1.1)
    table = agreement_table(pd.concat([reference, larger]), n_boot=N_BOOT)
    assert list(table.columns) == AGREEMENT_COLUMNS
    area = table.set_index("measure").loc[LOG_AREA]
    assert area["bias"] == pytest.approx(np.log(1.1)) and area["mae"] == pytest.approx(np.log(1.1))
    assert area["n_patients"] == 6 and area["n_images"] == 18
    assert area["bias_ci_low"] == pytest.approx(np.log(1.1))


# --- (a) perfect predictions ---------------------------------------------------------------------


def test_perfect_predictions_have_no_error():
    metadata, truth = _cohort(n_patients=6, days=(0, 14, 28, 42))
    measures = pd.concat(
        [truth, _as(truth, "reference"), _as(truth, "gradnorm", backbone="unet")],
        ignore_index=True,
    )
    tables = longitudinal_tables(measures, metadata, n_boot=N_BOOT)
    assert set(tables) == set(TABLES)
    agreement = tables["agreement"].query("method == 'gradnorm'")
    assert len(agreement) == 1 + len(CLASSES)
    for column in ("bias", "mae", "loa_low", "loa_high", "mae_ci_high", "bias_ci_low"):
        assert agreement[column].abs().max() == pytest.approx(0.0, abs=1e-12)
    assert agreement["icc"].to_numpy() == pytest.approx(1.0)
    errors = tables["healing_errors"]
    assert list(errors.columns) == ["backbone", *HEALING_ERROR_COLUMNS]
    gradnorm = errors[errors["method"] == "gradnorm"].set_index("against")
    assert len(gradnorm.loc["truth"]) == len(gradnorm.loc["reference"]) == 6
    assert gradnorm["error"].max() == pytest.approx(0.0, abs=1e-6)
    kappa = tables["par4_agreement"].query("method == 'gradnorm' and against == 'reference'")
    assert kappa["percent_agreement"].iloc[0] == 100.0


# --- (b) the mixed model recovers simulated healing ----------------------------------------------


def test_mixed_model_recovers_simulated_rates():
    metadata, truth = _cohort(n_patients=12, noise=0.1, seed=3)
    rates, patients = healing_rates(truth)
    row = rates.iloc[0]
    assert row["fit"] == MIXEDLM and row["time_unit"] == "day" and row["area_unit"] == "mm2"
    true = true_healing_rates(metadata)
    assert row["ci_low"] < true.mean() < row["ci_high"]
    assert row["ci_high"] - row["ci_low"] < 0.02
    per_patient = patients.set_index("patient_id")["healing_rate"]
    error = (per_patient - true).abs()
    # One visit's log area has SD 0.1; an OLS slope over days 0..56 has SD 0.1 / 44 = 0.0023.
    assert error.mean() < 0.003 and error.max() < 0.008
    assert np.corrcoef(per_patient[true.index], true)[0, 1] > 0.9


def test_too_few_patients_or_a_failed_mixed_model_fall_back_to_patient_slopes(monkeypatch):
    _, truth = _cohort(n_patients=2, noise=0.05)
    fit = fit_trend(truth.assign(value=np.log(truth["wound_area_px"])), time="visit_day")
    assert fit.fit == PATIENT_OLS and "too few for MixedLM" in fit.note
    assert len(fit.patient_slopes) == 2 and fit.slope < 0
    _, cohort = _cohort(n_patients=8, noise=0.1)
    monkeypatch.setattr(healing, "_mixedlm", lambda data, confidence: (None, "MixedLM broke"))
    rates, patients = healing_rates(cohort)
    assert rates["fit"].iloc[0] == PATIENT_OLS and "MixedLM broke; fell back" in rates["note"][0]
    assert set(patients["fit"]) == {PATIENT_OLS}
    assert rates["ci_low"].iloc[0] < rates["healing_rate"].iloc[0] < rates["ci_high"].iloc[0]


def test_without_days_rates_are_per_visit_and_not_compared_with_the_truth():
    metadata, truth = _cohort(n_patients=6, noise=0.05)
    no_days = truth.assign(visit_day=np.nan)
    measures = pd.concat([_as(no_days, "reference"), _as(no_days, "ew")])
    tables = longitudinal_tables(measures, metadata, n_boot=N_BOOT)
    assert set(tables["healing_rates"]["time_unit"]) == {"visit"}
    assert set(tables["healing_errors"]["against"]) == {"reference"}
    assert set(tables["par4"]["call"]) == {NOT_ASSESSED}


def test_tissue_trends_find_granulation_rising_and_slough_falling():
    _, truth = _cohort(n_patients=8, noise=0.05)
    rng = np.random.default_rng(0)
    noisy = truth.assign(
        fraction_granulation=truth["fraction_granulation"] + rng.normal(0, 0.02, len(truth))
    )
    trends = tissue_trends(noisy).set_index("measure")
    granulation = trends.loc["fraction_granulation"]
    assert granulation["ci_low"] < 0.005 < granulation["ci_high"]
    assert trends.loc["fraction_slough", "slope"] == pytest.approx(-0.005, abs=1e-6)
    assert trends.loc["fraction_slough_and_necrosis", "slope"] < 0


# --- (c) percent area reduction at 4 weeks and kappa ---------------------------------------------


def test_par4_interpolates_log_area_and_needs_visits_to_day_28():
    first, baseline, later, par = percent_area_reduction([0, 14, 42], [100.0, 60.0, 20.0])
    assert (first, baseline) == (0.0, 100.0)
    assert later == pytest.approx(np.sqrt(60 * 20))  # halfway in log area between 14 and 42
    assert par == pytest.approx(100 - np.sqrt(1200))
    assert percent_area_reduction([0, 28], [100.0, 50.0])[3] == pytest.approx(50.0)
    assert healer_call(50.0) == HEALER and healer_call(49.9) == NON_HEALER
    short = percent_area_reduction([7, 21, 34], [100.0, 60.0, 40.0])  # ends before day 35
    assert np.isnan(short[3]) and healer_call(short[3]) == NOT_ASSESSED
    unsorted = percent_area_reduction([28, 0], [40.0, 100.0])
    assert unsorted[3] == pytest.approx(60.0)


def test_healer_calls_and_cohen_s_kappa():
    days = [0, 28]
    areas = {  # patient: (reference areas, gradnorm areas)
        "A": ([100, 30], [100, 30]),  # both healer
        "B": ([100, 45], [100, 70]),  # reference healer, gradnorm not
        "C": ([100, 80], [100, 90]),  # both non-healer
        "D": ([100, 90], [100, 95]),  # both non-healer
    }
    rows = []
    for patient, pair in areas.items():
        for source, values in zip(("reference", "gradnorm"), pair, strict=True):
            for day, area in zip(days, values, strict=True):
                rows.append(
                    {
                        "source": source,
                        "patient_id": patient,
                        "visit_day": day,
                        "wound_area_px": area,
                    }
                )
    rows.append({"source": "gradnorm", "patient_id": "E", "visit_day": 0, "wound_area_px": 50})
    par4 = par4_table(pd.DataFrame(rows))
    calls = par4.pivot(index="patient_id", columns="source", values="call")
    assert list(calls["reference"].dropna()) == [HEALER, HEALER, NON_HEALER, NON_HEALER]
    assert calls.loc["E", "gradnorm"] == NOT_ASSESSED
    row = healer_agreement(par4).set_index("method").loc["gradnorm"]
    # observed 3/4, expected (1/4 * 2/4 + 3/4 * 2/4) = 1/2: kappa = (0.75 - 0.5) / 0.5
    assert row["n_patients"] == 4 and row["n_agree"] == 3 and row["kappa"] == pytest.approx(0.5)
    same = par4[par4["patient_id"].isin(["C", "D"])]
    undefined = healer_agreement(same).set_index("method").loc["gradnorm"]
    assert np.isnan(undefined["kappa"]) and "undefined" in undefined["note"]


# --- the end-to-end tables -----------------------------------------------------------------------


def test_longitudinal_tables_average_seeds_and_keep_one_checkpoint_per_backbone():
    metadata, truth = _cohort(n_patients=5, days=(0, 14, 28, 42), noise=0.05)
    reference = _as(truth, "reference")
    runs = []
    for backbone, factor in (("unet", 1.0), ("segformer", 1.2)):
        for seed, spread in ((0, 0.9), (1, 1.1)):
            area = truth["wound_area_px"] * factor * spread
            runs.append(
                _as(
                    truth,
                    "gradnorm",
                    backbone=backbone,
                    seed=seed,
                    wound_area_px=area,
                    checkpoint="best",
                )
            )
        runs.append(
            _as(
                truth,
                "gradnorm",
                backbone=backbone,
                seed=0,
                checkpoint="last",
                wound_area_px=truth["wound_area_px"] * 50,
            )
        )
    tables = longitudinal_tables(
        pd.concat([truth, reference, *runs], ignore_index=True), metadata, n_boot=N_BOOT
    )
    for name in TABLES:
        assert tables[name].columns[0] == "backbone"
        assert set(tables[name]["backbone"]) == {"unet", "segformer"}, name
    area = tables["agreement"].query("method == 'gradnorm' and measure == @LOG_AREA")
    bias = area.set_index("backbone")["bias"]
    assert bias["unet"] == pytest.approx(0.0, abs=1e-12)  # seeds 0.9x and 1.1x average to 1x
    assert bias["segformer"] == pytest.approx(np.log(1.2))


def test_healing_errors_feed_claim_six():
    from wing.statistics.claims import SUPPORTED, claims_table

    metadata, truth = _cohort(n_patients=10, days=(0, 14, 28, 42))
    rng = np.random.default_rng(2)
    runs = [_as(truth, "gradnorm")]  # exact areas: its rates are the true ones
    for method in ("stl", "ew"):
        noisy = truth["wound_area_px"] * np.exp(rng.normal(0, 0.3, len(truth)))
        runs.append(_as(truth, method, wound_area_px=noisy))
    measures = pd.concat([truth, _as(truth, "reference"), *runs], ignore_index=True)
    errors = longitudinal_tables(measures, metadata, n_boot=N_BOOT)["healing_errors"]
    claims = claims_table(None, None, None, None, healing_errors=errors, n_boot=N_BOOT)
    six = claims[claims["claim_id"] == "6"]
    assert list(six["verdict"]) == [SUPPORTED] * 3
    assert six.iloc[0]["target"] == "healing-rate error vs truth"
