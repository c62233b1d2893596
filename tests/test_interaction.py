"""The method x backbone interaction of claim (4) (wing.statistics.interaction)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pingouin as pg
import pytest
from scipy import stats
from statsmodels.stats.anova import AnovaRM

from wing.statistics.interaction import (
    ASSESSED,
    INTERACTION_COLUMNS,
    backbone_interaction,
    friedman,
    rm_anova,
)
from wing.statistics.paired import holm


def _patient_scores(
    differences: dict[str, list[float]],
    target: str = "wound",
    metric: str = "dice",
    comparator: str = "ew",
) -> pd.DataFrame:
    """Patient-level scores: gradnorm = 0.5 + patient offset, ``comparator`` = gradnorm minus
    the given difference, per backbone (one list entry per patient, NaN = not scored)."""
    rows = []
    for backbone, diffs in differences.items():
        for i, d in enumerate(diffs):
            ours = 0.5 + 0.01 * i
            for method, value in (("gradnorm", ours), (comparator, ours - d)):
                rows.append(
                    {
                        "backbone": backbone,
                        "method": method,
                        "target": target,
                        "metric": metric,
                        "patient_id": f"pat{i}",
                        "value": value,
                        "n_images": 1,
                    }
                )
    return pd.DataFrame(rows)


def test_rm_anova_by_hand_on_three_patients_and_two_backbones():
    # differences (gradnorm - ew): patient rows [0.01, 0.02], [0.02, 0.04], [0.03, 0.03].
    # Grand mean 0.025; backbone means 0.02, 0.03: SS_backbone = 3 * 2 * 0.005^2 = 1.5e-4;
    # patient means 0.015, 0.03, 0.03: SS_patient = 2 * (0.01^2 + 2 * 0.005^2) = 3e-4;
    # SS_total = 5.5e-4, so SS_error = 1e-4 and F = (1.5e-4 / 1) / (1e-4 / 2) = 3 on (1, 2).
    scores = _patient_scores({"resnet": [0.01, 0.02, 0.03], "segformer": [0.02, 0.04, 0.03]})
    table = backbone_interaction(scores, targets=["wound"])
    assert list(table.columns) == INTERACTION_COLUMNS
    assert list(table["backbone"]) == ["resnet", "segformer"]
    row = table.iloc[0]
    assert row["status"] == ASSESSED
    assert (row["n_backbones"], row["n_patients"], row["ddof1"], row["ddof2"]) == (2, 3, 1, 2)
    assert row["F"] == pytest.approx(3.0)
    assert row["p_anova"] == pytest.approx(stats.f.sf(3.0, 1, 2))
    # With two backbones F is the square of the paired t of the two backbones' differences.
    t = stats.ttest_rel([0.01, 0.02, 0.03], [0.02, 0.04, 0.03])
    assert row["F"] == pytest.approx(t.statistic**2) and row["p_anova"] == pytest.approx(t.pvalue)
    assert list(table["mean_difference"]) == pytest.approx([0.02, 0.03])
    assert list(table["sign"]) == ["+", "+"]


def test_rm_anova_and_friedman_match_statsmodels_pingouin_and_scipy():
    rng = np.random.default_rng(3)
    d = rng.normal(0.02, 0.03, size=(6, 3))
    scores = _patient_scores({f"b{j}": list(d[:, j]) for j in range(3)})
    row = backbone_interaction(scores, targets=["wound"]).iloc[0]
    long = pd.DataFrame(
        [(i, f"b{j}", d[i, j]) for i in range(6) for j in range(3)],
        columns=["patient_id", "backbone", "difference"],
    )
    expected = AnovaRM(long, "difference", "patient_id", within=["backbone"]).fit().anova_table
    assert row["F"] == pytest.approx(expected["F Value"].iloc[0])
    assert row["p_anova"] == pytest.approx(expected["Pr > F"].iloc[0])
    assert (row["ddof1"], row["ddof2"]) == (2, 10)
    ours = pg.rm_anova(data=long, dv="difference", within="backbone", subject="patient_id")
    assert row["F"] == pytest.approx(ours["F"].iloc[0])
    res = stats.friedmanchisquare(*d.T)
    assert row["friedman_statistic"] == pytest.approx(res.statistic)
    assert row["p_friedman"] == pytest.approx(res.pvalue)


def test_friedman_on_two_backbones_by_hand_and_with_ties_as_scipy():
    # Four patients, the first backbone ahead on each: rank sums 8 and 4, so
    # Q = 12 / (4 * 2 * 3) * (8^2 + 4^2) - 3 * 4 * 3 = 4 on 1 degree of freedom.
    d = np.array([[0.05, 0.01], [0.04, 0.02], [0.06, 0.00], [0.03, 0.01]])
    assert friedman(d) == pytest.approx((4.0, stats.chi2.sf(4.0, 1)))
    long = pd.DataFrame(
        [(i, j, d[i, j]) for i in range(4) for j in range(2)], columns=["s", "b", "d"]
    )
    assert friedman(d)[0] == pytest.approx(pg.friedman(long, "d", "b", "s")["Q"].iloc[0])
    tied = np.array([[1.0, 1.0, 2.0], [3.0, 2.0, 2.0], [1.0, 2.0, 3.0], [2.0, 2.0, 2.5]])
    res = stats.friedmanchisquare(*tied.T)
    assert friedman(tied) == pytest.approx((res.statistic, res.pvalue))
    assert np.isnan(friedman(np.ones((4, 2)))).all()  # every patient tied: nothing to rank


def test_degenerate_tables_get_the_right_limits():
    # A pure backbone effect (error 0) is the most significant interaction there is
    # (pingouin.rm_anova returns F = -1e15, p = 1 here); nothing varying is none at all.
    shifted = np.array([[0.1, 0.15], [0.2, 0.25], [0.3, 0.35]])
    assert rm_anova(shifted) == (np.inf, 1, 2, 0.0)
    assert rm_anova(np.full((3, 2), 0.1)) == (0.0, 1, 2, 1.0)
    assert rm_anova(shifted[:, [0, 0]])[3] == 1.0  # the same difference on both backbones


def test_only_patients_on_every_backbone_and_backbones_with_both_methods_enter():
    scores = _patient_scores(
        {"resnet": [0.01, 0.02, 0.03, 0.5], "segformer": [0.02, 0.04, 0.03, np.nan]}
    )
    no_ew = _patient_scores({"mit": [0.9, 0.9, 0.9, 0.9]}, comparator="pcgrad")
    table = backbone_interaction(pd.concat([scores, no_ew]), targets=["wound"])
    assert list(table["backbone"]) == ["resnet", "segformer"]
    assert set(table["n_patients"]) == {3} and set(table["n_backbones"]) == {2}
    assert table.iloc[0]["F"] == pytest.approx(3.0)  # pat3 (+0.5 on resnet only) left out
    assert list(table["mean_difference"]) == pytest.approx([0.02, 0.03])


def test_differences_favour_the_reference_for_hd95_too():
    # HD95: lower is better, so the oriented difference is ew minus gradnorm.
    scores = _patient_scores(
        {"resnet": [1.0, 2.0, 3.0], "segformer": [2.0, 1.0, 1.0]}, metric="hd95"
    )
    table = backbone_interaction(scores, targets=["wound"], metric="hd95")
    assert list(table["mean_difference"]) == pytest.approx([-2.0, -4 / 3])
    assert list(table["sign"]) == ["-", "-"]
    assert backbone_interaction(scores, targets=["wound"]).iloc[0]["n_backbones"] == 0  # dice


def test_not_assessed_with_one_backbone_or_two_common_patients():
    one = backbone_interaction(_patient_scores({"resnet": [0.01, 0.02, 0.03]}), targets=["wound"])
    assert one.iloc[0]["status"].startswith("not assessed: 1 backbone(s)")
    assert np.isnan(one.iloc[0]["F"]) and one.iloc[0]["mean_difference"] == pytest.approx(0.02)
    two = backbone_interaction(
        _patient_scores({"resnet": [0.01, 0.02], "segformer": [0.02, 0.04]}), targets=["wound"]
    )
    assert set(two["status"]) == {
        "not assessed: 2 patient(s) common to every backbone; the interaction needs at least 3"
    }
    assert two["p_anova"].isna().all() and two["p_anova_holm"].isna().all()
    none = backbone_interaction(_patient_scores({"resnet": [0.01]}), comparator="pcgrad")
    assert list(none["target"]) == ["wound", "tissue_mean"] and none["backbone"].isna().all()
    assert none["status"].str.startswith("not assessed: 0 backbone(s)").all()


def test_holm_over_the_assessed_targets():
    wound = _patient_scores({"resnet": [0.01, 0.02, 0.03], "segformer": [0.02, 0.04, 0.03]})
    tissue = _patient_scores(
        {"resnet": [0.01, 0.02, 0.03, 0.05], "segformer": [0.05, 0.04, 0.08, 0.06]},
        target="tissue_mean",
    )
    table = backbone_interaction(pd.concat([wound, tissue]))
    first = table.drop_duplicates("target").set_index("target")
    assert list(first.index) == ["wound", "tissue_mean"]
    expected = holm(first["p_anova"].to_numpy())
    assert first["p_anova_holm"].to_numpy() == pytest.approx(expected)
    p = first["p_anova"]
    assert first.loc["tissue_mean", "p_anova_holm"] == pytest.approx(2 * p["tissue_mean"])
    assert first.loc["wound", "p_anova_holm"] == pytest.approx(p["wound"])  # the larger p
    # A target that is not assessed is not in the family.
    alone = backbone_interaction(pd.concat([wound, tissue[tissue["patient_id"] < "pat2"]]))
    alone = alone.drop_duplicates("target").set_index("target")
    assert np.isnan(alone.loc["tissue_mean", "p_anova_holm"])
    assert alone.loc["wound", "p_anova_holm"] == pytest.approx(p["wound"])
    # Every row of a target carries its target's tests.
    assert table.groupby("target")["p_anova_holm"].nunique().eq(1).all()
