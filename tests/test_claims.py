"""The claim rule (wing.statistics.claims): every verdict from hand-made tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from wing.statistics.claims import (
    CLAIM_COLUMNS,
    CLAIMS,
    CONTRADICTED,
    DESIGN_PROPERTY,
    NO_DIFFERENCE,
    NOT_ASSESSED,
    SUPPORTED,
    VERDICTS,
    claims_table,
    combine_verdicts,
    judge_comparison,
    judge_convergence,
)
from wing.statistics.interaction import backbone_interaction
from wing.statistics.paired import compare_to_reference, delta_mtl, patient_level

N_BOOT = 400
EMPTY = pd.DataFrame()


def _row(**overrides) -> dict:
    """One compare_to_reference row, significant and favourable to the reference."""
    row = {
        "backbone": "unet",
        "target": "wound",
        "metric": "dice",
        "higher_is_better": True,
        "unit": "patient",
        "reference": "gradnorm",
        "method": "stl",
        "n": 6,
        "n_patients": 6,
        "n_images": 24,
        "mean_reference": 0.80,
        "mean_method": 0.75,
        "mean_difference": 0.05,
        "ci_low": 0.02,
        "ci_high": 0.08,
        "median_difference": 0.05,
        "median_ci_low": 0.01,
        "median_ci_high": 0.09,
        "wilcoxon_p_holm": 0.03,
        "ttest_p_holm": 0.01,
        "rank_biserial": 1.0,
    }
    return row | overrides


# --- judge_comparison on single rows -------------------------------------------------------------


@pytest.mark.parametrize("test", ["ttest", "wilcoxon"])
def test_supported_needs_significance_direction_and_interval(test):
    assert judge_comparison(_row(), test)[0] == SUPPORTED


@pytest.mark.parametrize("test", ["ttest", "wilcoxon"])
def test_contradicted_is_the_mirror_image(test):
    row = _row(
        mean_difference=-0.05,
        ci_low=-0.08,
        ci_high=-0.02,
        median_difference=-0.05,
        median_ci_low=-0.09,
        median_ci_high=-0.01,
        rank_biserial=-1.0,
    )
    assert judge_comparison(row, test)[0] == CONTRADICTED


@pytest.mark.parametrize("test", ["ttest", "wilcoxon"])
def test_not_significant_is_no_difference(test):
    verdict, reason = judge_comparison(_row(ttest_p_holm=0.2, wilcoxon_p_holm=0.2), test)
    assert verdict == NO_DIFFERENCE and "not significant" in reason


def test_significant_but_interval_straddling_zero_is_no_difference():
    verdict, reason = judge_comparison(_row(ci_low=-0.01), "ttest")
    assert verdict == NO_DIFFERENCE and "straddles 0" in reason
    verdict, reason = judge_comparison(_row(median_ci_low=-0.01), "wilcoxon")
    assert verdict == NO_DIFFERENCE and "straddles 0" in reason


def test_wilcoxon_direction_statistics_must_agree():
    verdict, reason = judge_comparison(_row(rank_biserial=-0.4), "wilcoxon")
    assert verdict == NO_DIFFERENCE and "disagree" in reason
    assert judge_comparison(_row(rank_biserial=-0.4), "ttest")[0] == SUPPORTED


def test_significance_level_is_a_parameter():
    assert judge_comparison(_row(ttest_p_holm=0.03), "ttest", significance=0.01)[0] == (
        NO_DIFFERENCE
    )


def test_too_few_patients_is_not_assessed():
    verdict, reason = judge_comparison(_row(n=1, ttest_p_holm=np.nan), "ttest")
    assert verdict == NOT_ASSESSED and "1 paired patients" in reason
    with pytest.raises(ValueError):
        judge_comparison(_row(), "anova")


def test_combine_verdicts():
    assert combine_verdicts([SUPPORTED, SUPPORTED]) == SUPPORTED
    assert combine_verdicts([SUPPORTED, NO_DIFFERENCE]) == NO_DIFFERENCE
    assert combine_verdicts([CONTRADICTED, NO_DIFFERENCE]) == CONTRADICTED
    assert combine_verdicts([CONTRADICTED, SUPPORTED]) == NO_DIFFERENCE
    assert combine_verdicts([NOT_ASSESSED, NOT_ASSESSED]) == NOT_ASSESSED
    assert combine_verdicts([SUPPORTED, NOT_ASSESSED]) == NO_DIFFERENCE
    assert combine_verdicts([]) == NOT_ASSESSED


# --- from score tables ---------------------------------------------------------------------------


def _scores(
    differences: dict[str, np.ndarray],
    images_per_patient: int = 1,
    targets=("wound", "tissue_mean"),
    backbone="unet",
) -> pd.DataFrame:
    """gradnorm = base; each other method = base - its per-image difference (two seeds), so the
    difference given is gradnorm minus the method.

    Values are multiples of 1/1024 so that the differences are exact (no spurious ties).
    """
    n = len(next(iter(differences.values())))
    base = 0.5 + np.arange(n) / 1024
    rows = []
    for target in targets:
        for method, d in {"gradnorm": np.zeros(n), **differences}.items():
            for seed in range(2):
                for i in range(n):
                    rows.append(
                        {
                            "sample_id": f"img{i:02d}",
                            "patient_id": f"pat{i // images_per_patient:02d}",
                            "target": target,
                            "metric": "dice",
                            "value": base[i] - d[i],
                            "backbone": backbone,
                            "method": method,
                            "seed": seed,
                        }
                    )
    return pd.DataFrame(rows)


def _claims(scores: pd.DataFrame, test: str = "ttest", **kwargs) -> pd.DataFrame:
    paired = compare_to_reference(scores, targets=("wound", "tissue_mean"), n_boot=N_BOOT)
    args = {"convergence": None, "delta": None, "parameters": None} | kwargs
    return claims_table(paired, reference="gradnorm", test=test, **args)


def _headline(table: pd.DataFrame, claim_id: str) -> pd.Series:
    rows = table[(table["claim_id"] == claim_id) & table["headline"]]
    assert len(rows) == 1
    return rows.iloc[0]


def test_fifteen_worse_one_better_is_never_supported():
    # 16 patients: WING-MTL 1/128 worse on 15, 0.5 better on one -> mean difference > 0.
    d = np.r_[np.full(15, -1 / 128), 0.5]  # gradnorm - stl per patient (one image each)
    scores = _scores({"stl": d}, targets=("wound",))
    paired = compare_to_reference(scores, n_boot=N_BOOT)
    row = paired.iloc[0]
    assert row["mean_difference"] > 0 and row["wilcoxon_p"] < 0.05 and row["rank_biserial"] < 0
    ttest = _claims(scores, "ttest")
    wilcoxon = _claims(scores, "wilcoxon")
    assert _headline(ttest, "1")["verdict"] == NO_DIFFERENCE
    assert _headline(wilcoxon, "1")["verdict"] == CONTRADICTED
    assert SUPPORTED not in set(ttest["verdict"]) | set(wilcoxon["verdict"])


def test_patient_level_rows_and_overall_row():
    rng = np.random.default_rng(0)
    gain = np.repeat([0.05, 0.04, 0.06, 0.05, 0.03, 0.05], 4) + rng.normal(0, 0.002, 24)
    table = _claims(_scores({"stl": gain, "ew": -gain}, images_per_patient=4))
    assert list(table.columns) == CLAIM_COLUMNS
    one = table[table["claim_id"] == "1"]
    assert list(one["target"]) == ["wound", "tissue_mean", "all"]
    assert list(one["headline"]) == [False, False, True]
    assert set(one["verdict"]) == {SUPPORTED}
    assert set(one["n_patients"]) == {6} and set(one["n_images"]) == {24}
    assert "6 patients / 24 images" in one.iloc[0]["evidence"]
    assert "every row is supported" in one.iloc[-1]["rule"]
    assert _headline(table, "2a")["verdict"] == CONTRADICTED


def test_overall_row_mixes_targets():
    n = 12
    gain = np.linspace(0.03, 0.06, n)
    scores = pd.concat(
        [
            _scores({"stl": gain}, targets=("wound",)),
            _scores({"stl": np.r_[gain[:6], -gain[:6]]}, targets=("tissue_mean",)),
        ]
    )
    table = _claims(scores)
    one = table[table["claim_id"] == "1"].set_index("target")
    assert one.loc["wound", "verdict"] == SUPPORTED
    assert one.loc["tissue_mean", "verdict"] == NO_DIFFERENCE
    assert one.loc["all", "verdict"] == NO_DIFFERENCE


def test_missing_comparators_are_not_assessed_never_dropped():
    gain = np.linspace(0.03, 0.06, 8)
    table = _claims(_scores({"stl": gain}))
    ew = _headline(table, "2a")
    assert ew["verdict"] == NOT_ASSESSED and "ew was not run" in ew["reason"]
    advanced = _headline(table, "2b")
    assert advanced["verdict"] == NOT_ASSESSED
    assert advanced["reason"] == "no advanced MTL method was run"
    assert set(table["claim_id"]) == set(CLAIMS)
    assert set(table["verdict"]) <= set(VERDICTS)
    ran = _claims(_scores({"stl": gain}), methods_run=["stl", "ew", "gradnorm"])
    assert "ew was run but has no paired" in _headline(ran, "2a")["reason"]


def test_advanced_methods_are_every_other_comparator():
    gain = np.linspace(0.03, 0.06, 8)
    table = _claims(_scores({"stl": gain, "ew": gain, "pcgrad": gain, "cagrad": -gain}))
    rows = table[table["claim_id"] == "2b"]
    assert set(rows["comparator"]) == {"cagrad", "pcgrad", "cagrad, pcgrad"}
    assert _headline(table, "2b")["verdict"] == NO_DIFFERENCE  # one supported, one contradicted
    only_pcgrad = _claims(_scores({"stl": gain, "pcgrad": gain}))
    assert _headline(only_pcgrad, "2b")["verdict"] == SUPPORTED


def test_backbone_claim_needs_two_backbones_and_ew_on_each():
    gain = np.linspace(0.03, 0.06, 8)
    single = _claims(_scores({"stl": gain, "ew": gain}))
    assert _headline(single, "4")["verdict"] == NOT_ASSESSED
    two = pd.concat(
        [
            _scores({"stl": gain, "ew": gain}, backbone="resnet"),
            _scores({"stl": gain, "ew": gain}, backbone="segformer"),
        ]
    )
    assert _headline(_claims(two), "4")["verdict"] == SUPPORTED
    mixed = pd.concat(
        [
            _scores({"stl": gain, "ew": gain}, backbone="resnet"),
            _scores({"stl": gain, "ew": gain * 0}, backbone="segformer"),
        ]
    )
    rows = _claims(mixed).query("claim_id == '4'").set_index("backbone")
    assert rows.loc["resnet", "verdict"] == SUPPORTED
    assert rows.loc["segformer", "verdict"] == NO_DIFFERENCE
    assert rows.loc["all", "verdict"] == NO_DIFFERENCE


def test_parameters_are_a_design_property():
    gain = np.linspace(0.03, 0.06, 8)
    parameters = pd.DataFrame(
        {"backbone": "unet", "method": ["stl", "ew", "gradnorm"], "parameters": [200, 120, 120]}
    )
    table = _claims(_scores({"stl": gain}), parameters=parameters)
    row = _headline(table, "5")
    assert row["kind"] == DESIGN_PROPERTY and row["verdict"] == SUPPORTED
    assert "60%" in row["reason"]
    bigger = parameters.assign(parameters=[100, 120, 120])
    assert _headline(_claims(_scores({"stl": gain}), parameters=bigger), "5")["verdict"] == (
        CONTRADICTED
    )
    assert _headline(table, "6")["verdict"] == NOT_ASSESSED
    assert set(table.loc[table["claim_id"] != "5", "kind"]) == {"finding"}


@pytest.mark.parametrize(
    ("low", "high", "verdict"),
    [(1.0, 9.0, SUPPORTED), (-2.0, 9.0, NO_DIFFERENCE), (-9.0, -1.0, CONTRADICTED)],
)
def test_delta_mtl_verdict_reads_its_interval(low, high, verdict):
    delta = pd.DataFrame(
        {
            "backbone": "unet",
            "method": ["stl", "gradnorm"],
            "metric": "dice",
            "n_patients": 6,
            "delta_mtl": [0.0, (low + high) / 2],
            "delta_mtl_ci_low": [0.0, low],
            "delta_mtl_ci_high": [0.0, high],
        }
    )
    table = _claims(_scores({"stl": np.linspace(0.03, 0.06, 8)}), delta=delta)
    row = _headline(table, "delta_mtl")
    assert row["verdict"] == verdict and row["n_patients"] == 6
    assert _headline(_claims(_scores({"stl": np.zeros(8)})), "delta_mtl")["verdict"] == (
        NOT_ASSESSED
    )


def test_delta_mtl_from_scores_feeds_the_claim():
    gain = np.linspace(0.03, 0.06, 8)
    scores = _scores({"stl": gain})
    delta = delta_mtl(scores, n_boot=N_BOOT)
    assert _headline(_claims(scores, delta=delta), "delta_mtl")["verdict"] == SUPPORTED


# --- convergence (claim 3) -----------------------------------------------------------------------


def _convergence(gaps: dict[tuple[str, int], int], falling=(), stopped=True) -> pd.DataFrame:
    rows = [
        {
            "method": method,
            "backbone": "unet",
            "seed": seed,
            "wound_epoch": 10,
            "tissue_epoch": 10 + gap,
            "epochs": 10 + gap + (0 if (method, seed) in falling else 5),
            "epoch_gap": gap,
            "stopped_early": stopped and (method, seed) not in falling,
            "at_last_epoch": (method, seed) in falling,
        }
        for (method, seed), gap in gaps.items()
    ]
    return pd.DataFrame(rows).astype({"epoch_gap": "Int64"})


@pytest.mark.parametrize(
    ("gaps", "window", "verdict"),
    [
        ({("gradnorm", 0): 0, ("gradnorm", 1): 0, ("ew", 0): 3, ("ew", 1): 0}, 0, SUPPORTED),
        ({("gradnorm", 0): 1, ("gradnorm", 1): 0, ("ew", 0): 3, ("ew", 1): 2}, 1, SUPPORTED),
        ({("gradnorm", 0): 1, ("gradnorm", 1): 0, ("ew", 0): 3, ("ew", 1): 2}, 0, NO_DIFFERENCE),
        ({("gradnorm", 0): 0, ("gradnorm", 1): 0, ("ew", 0): 0, ("ew", 1): 0}, 0, NO_DIFFERENCE),
        ({("gradnorm", 0): 4, ("gradnorm", 1): 2, ("ew", 0): 1, ("ew", 1): 2}, 0, CONTRADICTED),
        ({("gradnorm", 0): 0, ("gradnorm", 1): 2, ("ew", 0): 1, ("ew", 1): 1}, 0, NO_DIFFERENCE),
    ],
)
def test_convergence_rule(gaps, window, verdict):
    table = _convergence(gaps)
    assert judge_convergence(table, "gradnorm", window)[0] == verdict
    claims = claims_table(EMPTY, table, None, None, window=window, tolerance=0.01)
    row = _headline(claims, "3")
    assert row["verdict"] == verdict and row["n_units"] == 2 and row["unit"] == "seeds"
    assert "tolerance of 0.01" in row["rule"] and "Descriptive rule over seeds" in row["rule"]


def test_convergence_not_assessed_while_a_loss_still_falls():
    gaps = {("gradnorm", 0): 0, ("gradnorm", 1): 0, ("ew", 0): 3, ("ew", 1): 3}
    verdict, reason, _, _ = judge_convergence(_convergence(gaps, falling=[("ew", 1)]), window=0)
    assert verdict == NOT_ASSESSED and "still falling" in reason and "ew seed 1" in reason


def test_convergence_not_assessed_without_reference_or_comparator():
    assert judge_convergence(_convergence({("ew", 0): 3}))[0] == NOT_ASSESSED
    assert judge_convergence(_convergence({("gradnorm", 0): 0}))[0] == NOT_ASSESSED
    no_history = claims_table(EMPTY, None, None, None)
    assert _headline(no_history, "3")["verdict"] == NOT_ASSESSED


def test_every_claim_has_one_headline_even_with_empty_tables():
    table = claims_table(EMPTY, None, None, None)
    assert list(table.loc[table["headline"], "claim_id"]) == list(CLAIMS)
    assert set(table["verdict"]) == {NOT_ASSESSED}
    assert table["reason"].str.len().gt(0).all()


def test_claims_refuse_image_level_comparisons():
    scores = _scores({"stl": np.linspace(0.03, 0.06, 8)})
    images = compare_to_reference(scores, n_boot=N_BOOT, unit="image")
    with pytest.raises(ValueError, match="patient"):
        claims_table(images, None, None, None)


# --- claim (4): every backbone, with the method x backbone interaction ---------------------------

GAIN = np.linspace(0.03, 0.06, 8)  # consistent: (2a) supported
NOISY = np.array([0.2, -0.15, 0.18, -0.12, 0.15, -0.1, 0.1, -0.08])  # mean +0.0225, (2a) not
SHIFTED = GAIN - 0.04 + 0.002 * (-1) ** np.arange(8)  # mean +0.005, far below GAIN everywhere


def _two_backbones(resnet: np.ndarray, segformer: np.ndarray) -> pd.DataFrame:
    """gradnorm minus ew is ``resnet`` per patient on one backbone, ``segformer`` on the other."""
    return pd.concat(
        [
            _scores({"ew": resnet}, backbone="resnet"),
            _scores({"ew": segformer}, backbone="segformer"),
        ]
    )


def _backbone_rows(scores: pd.DataFrame, with_interaction: bool = True) -> pd.DataFrame:
    interaction = backbone_interaction(patient_level(scores, "dice")) if with_interaction else None
    table = _claims(scores, interaction=interaction)
    return table[table["claim_id"] == "4"].set_index("backbone")


def test_backbone_claim_supported_on_every_backbone():
    rows = _backbone_rows(_two_backbones(GAIN, GAIN))
    assert list(rows["verdict"]) == [SUPPORTED] * 3
    assert rows.loc["all", "reason"] == "claim (2a) supported on every backbone"
    assert rows.loc["all", "headline"] and not rows.loc["resnet", "headline"]
    # Route (a) needs no interaction table: today's callers keep today's verdict.
    assert _backbone_rows(_two_backbones(GAIN, GAIN), False).loc["all", "verdict"] == SUPPORTED


def test_backbone_claim_supported_by_same_sign_and_no_interaction():
    scores = _two_backbones(GAIN, NOISY)
    rows = _backbone_rows(scores)
    assert rows.loc["resnet", "verdict"] == SUPPORTED
    assert rows.loc["segformer", "verdict"] == NO_DIFFERENCE
    overall = rows.loc["all"]
    assert overall["verdict"] == SUPPORTED
    assert "supported on 1 of 2 backbones" in overall["reason"]
    assert (
        "resnet: (2a) supported; segformer: (2a) no significant difference" in (overall["evidence"])
    )
    assert "wound: mean difference resnet +0.045, segformer +0.023" in overall["evidence"]
    assert "interaction F(1, 7) = 0.18, p_Holm 1.000" in overall["evidence"]
    assert "p_Holm >= 0.05" in overall["rule"]
    # Without the interaction table, route (b) is closed.
    without = _backbone_rows(scores, False).loc["all"]
    assert without["verdict"] == NO_DIFFERENCE
    assert "no backbone interaction table" in without["reason"]


def test_backbone_claim_no_difference_when_the_signs_differ():
    overall = _backbone_rows(_two_backbones(GAIN, -NOISY)).loc["all"]
    assert overall["verdict"] == NO_DIFFERENCE
    assert "wound mean difference not > 0 on segformer" in overall["reason"]
    assert "significant (" not in overall["reason"]  # the interaction itself is not


def test_backbone_claim_no_difference_when_the_interaction_is_significant():
    overall = _backbone_rows(_two_backbones(GAIN, SHIFTED)).loc["all"]
    assert overall["verdict"] == NO_DIFFERENCE
    assert "wound interaction significant (p_Holm < 0.001)" in overall["reason"]
    assert "not > 0" not in overall["reason"]  # both backbones gain on average


def test_backbone_claim_no_difference_when_the_interaction_is_not_assessed():
    # The backbones were tested on different patients: none is common, no interaction test.
    scores = _two_backbones(GAIN, NOISY)
    on_segformer = scores["backbone"] == "segformer"
    scores.loc[on_segformer, "patient_id"] = "other_" + scores.loc[on_segformer, "patient_id"]
    overall = _backbone_rows(scores).loc["all"]
    assert overall["verdict"] == NO_DIFFERENCE
    assert "wound interaction not assessed: 0 patient(s) common" in overall["reason"]


def test_backbone_claim_contradicted_when_contradicted_somewhere_and_supported_nowhere():
    rows = _backbone_rows(_two_backbones(-GAIN, NOISY))
    assert rows.loc["resnet", "verdict"] == CONTRADICTED
    assert rows.loc["all", "verdict"] == CONTRADICTED
    mixed = _backbone_rows(_two_backbones(-GAIN, GAIN)).loc["all"]
    assert mixed["verdict"] == NO_DIFFERENCE and "contradicted on others" in mixed["reason"]


def test_backbone_claim_not_assessed_with_one_backbone_or_too_few_patients():
    one = _claims(_scores({"ew": GAIN}, backbone="resnet"))
    row = _headline(one, "4")
    assert row["verdict"] == NOT_ASSESSED and "only 1 backbone (resnet)" in row["reason"]
    # One patient per backbone: (2a) is not assessed anywhere, nor is the interaction.
    scores = _two_backbones(GAIN[:1], NOISY[:1])
    interaction = backbone_interaction(patient_level(scores, "dice"))
    assert interaction["status"].str.startswith("not assessed").all()
    rows = _backbone_rows(scores)
    assert set(rows["verdict"]) == {NOT_ASSESSED}
    assert rows.loc["all", "reason"] == "claim (2a) not assessed on any backbone"


# --- claim (6): per-patient healing-rate error ---------------------------------------------------

RISING = np.linspace(0.001, 0.003, 10)  # comparator's extra error per patient, per day


def _healing_errors(
    extra: dict[str, np.ndarray], against: str = "truth", backbone: str = "unet"
) -> pd.DataFrame:
    """Per-patient healing-rate errors: gradnorm's = base; each comparator's = base + extra, so
    a positive extra favours WING-MTL (lower error is better)."""
    n = len(next(iter(extra.values())))
    base = 0.004 + np.arange(n) / 20000
    rows = []
    for method, more in {"gradnorm": np.zeros(n), **extra}.items():
        for i in range(n):
            rows.append(
                {
                    "backbone": backbone,
                    "method": method,
                    "patient_id": f"pat{i:02d}",
                    "against": against,
                    "error": base[i] + more[i],
                    "time_unit": "day",
                }
            )
    return pd.DataFrame(rows)


def _claim_six(errors: pd.DataFrame | None, test: str = "ttest") -> pd.DataFrame:
    table = claims_table(EMPTY, None, None, None, test=test, healing_errors=errors, n_boot=N_BOOT)
    return table[table["claim_id"] == "6"]


@pytest.mark.parametrize("test", ["ttest", "wilcoxon"])
def test_healing_claim_supported_when_wing_mtl_tracks_healing_better(test):
    rows = _claim_six(_healing_errors({"stl": RISING, "ew": 2 * RISING}), test)
    assert list(rows["comparator"]) == ["stl", "ew", "stl, ew"]
    assert list(rows["headline"]) == [False, False, True]
    assert set(rows["verdict"]) == {SUPPORTED}
    assert set(rows["target"].iloc[:2]) == {"healing-rate error vs truth"}
    assert set(rows["n_patients"]) == {10}
    assert "% per day, lower is better" in rows.iloc[0]["evidence"]
    assert "mean gradnorm 0.4" in rows.iloc[0]["evidence"]  # percent per day: 100 x 0.004...
    assert "comparator error minus WING-MTL error" in rows.iloc[0]["rule"]


@pytest.mark.parametrize("test", ["ttest", "wilcoxon"])
def test_healing_claim_contradicted_when_wing_mtl_tracks_worse(test):
    rows = _claim_six(_healing_errors({"stl": -RISING, "ew": -RISING}), test)
    assert set(rows["verdict"]) == {CONTRADICTED}


def test_healing_claim_no_difference_when_errors_scatter_both_ways():
    scatter = 0.002 * np.array([1, -1, 0.8, -0.9, 1.1, -1.2, 0.7, -0.6, 1.0, -1.0])
    rows = _claim_six(_healing_errors({"stl": scatter, "ew": RISING}))
    verdicts = rows.set_index("comparator")["verdict"]
    assert verdicts["stl"] == NO_DIFFERENCE and verdicts["ew"] == SUPPORTED
    assert verdicts["stl, ew"] == NO_DIFFERENCE


def test_healing_claim_not_assessed_without_table_patients_or_comparator():
    assert _headline(_claim_six(None), "6")["verdict"] == NOT_ASSESSED
    assert "no longitudinal analysis" in _headline(_claim_six(None), "6")["reason"]
    few = _claim_six(_healing_errors({"stl": RISING[:2], "ew": RISING[:2]}))
    assert set(few["verdict"]) == {NOT_ASSESSED}
    assert "fewer than 3" in few.iloc[0]["reason"]
    no_ew = _claim_six(_healing_errors({"stl": RISING})).set_index("comparator")
    assert no_ew.loc["stl", "verdict"] == SUPPORTED
    assert no_ew.loc["ew", "verdict"] == NOT_ASSESSED and "of ew" in no_ew.loc["ew", "reason"]
    assert no_ew.loc["stl, ew", "verdict"] == NO_DIFFERENCE  # one comparator is not a claim
    nothing = _healing_errors({"stl": RISING}).query("method != 'gradnorm'")
    assert _headline(_claim_six(nothing), "6")["verdict"] == NOT_ASSESSED


def test_healing_claim_uses_the_truth_first_and_the_reference_masks_without_it():
    truth = _healing_errors({"stl": RISING, "ew": RISING})
    masks = _healing_errors({"stl": -RISING, "ew": -RISING}, against="reference")
    both = _claim_six(pd.concat([truth, masks]))
    assert _headline(both, "6")["verdict"] == SUPPORTED  # judged on the truth
    assert both.iloc[0]["target"] == "healing-rate error vs truth"
    masks_only = _claim_six(masks)
    assert masks_only.iloc[0]["target"] == "healing-rate error vs reference masks"
    assert _headline(masks_only, "6")["verdict"] == CONTRADICTED
