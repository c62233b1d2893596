"""Friedman test, post-hoc pairs and average ranks (wing.statistics.ranking)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scikit_posthocs as sp
from scipy import stats

from wing.statistics.paired import patient_level
from wing.statistics.ranking import (
    FRIEDMAN_COLUMNS,
    POSTHOC_COLUMNS,
    RANK_COLUMNS,
    average_ranks,
    friedman_test,
    posthoc,
    pvalue_matrix,
)

# patients x methods, hand-made: gradnorm best on most patients, one tie.
WIDE = pd.DataFrame(
    {
        "stl": [0.60, 0.55, 0.70, 0.65, 0.50, 0.62, 0.58],
        "ew": [0.62, 0.60, 0.69, 0.66, 0.52, 0.64, 0.58],
        "gradnorm": [0.70, 0.61, 0.75, 0.64, 0.60, 0.66, 0.59],
        "pcgrad": [0.65, 0.58, 0.72, 0.67, 0.55, 0.63, 0.57],
    },
    index=[f"pat{i}" for i in range(7)],
)


def _patient_scores(wide: pd.DataFrame = WIDE, metric: str = "dice") -> pd.DataFrame:
    long = wide.rename_axis("patient_id").reset_index()
    long = long.melt(id_vars="patient_id", var_name="method", value_name="value")
    return long.assign(backbone="unet", target="wound", metric=metric, n_images=1)


def test_friedman_matches_scipy():
    out = friedman_test(_patient_scores(), "wound", "dice")
    assert list(out.columns) == FRIEDMAN_COLUMNS
    row = out.iloc[0]
    expected = stats.friedmanchisquare(*(WIDE[m] for m in ["stl", "ew", "gradnorm", "pcgrad"]))
    assert row["status"] == "assessed"
    assert (row["n_methods"], row["n_patients"]) == (4, 7)
    assert row["methods"] == "stl, ew, gradnorm, pcgrad"
    assert row["statistic"] == pytest.approx(expected.statistic)
    assert row["p"] == pytest.approx(expected.pvalue)


@pytest.mark.parametrize("method", ["nemenyi", "conover"])
def test_posthoc_matches_scikit_posthocs(method):
    out = posthoc(_patient_scores(), "wound", "dice", method=method)
    assert list(out.columns) == POSTHOC_COLUMNS
    assert len(out) == 6  # 4 methods: 6 unordered pairs
    columns = ["stl", "ew", "gradnorm", "pcgrad"]
    if method == "nemenyi":
        expected = sp.posthoc_nemenyi_friedman(WIDE[columns])
    else:
        expected = sp.posthoc_conover_friedman(WIDE[columns], p_adjust="holm")
    for row in out.itertuples():
        assert row.p == pytest.approx(expected.loc[row.method_a, row.method_b])
    matrix = pvalue_matrix(out)
    assert list(matrix.index) == columns
    np.testing.assert_allclose(matrix.to_numpy(), matrix.to_numpy().T)
    np.testing.assert_allclose(np.diag(matrix), 1.0)
    with pytest.raises(ValueError):
        posthoc(_patient_scores(), "wound", "dice", method="tukey")


def test_average_ranks_best_first_with_ties():
    out = average_ranks(_patient_scores(), "wound", "dice")
    assert list(out.columns) == RANK_COLUMNS
    ranks = out.set_index("method")["average_rank"]
    # by hand, rank 1 = highest Dice per patient; pat6 ties stl and ew at 0.58 (2.5 each)
    expected = {
        "gradnorm": (1 + 1 + 1 + 4 + 1 + 1 + 1) / 7,
        "pcgrad": (2 + 3 + 2 + 1 + 2 + 3 + 4) / 7,
        "ew": (3 + 2 + 4 + 2 + 3 + 2 + 2.5) / 7,
        "stl": (4 + 4 + 3 + 3 + 4 + 4 + 2.5) / 7,
    }
    assert list(ranks.index) == ["gradnorm", "pcgrad", "ew", "stl"]
    for method, value in expected.items():
        assert ranks[method] == pytest.approx(value)
    assert ranks.sum() == pytest.approx(4 * 5 / 2)


def test_hd95_ranks_lowest_first():
    # negated Dice as a distance: the lowest distance is the best, so the ranks are unchanged
    hd95 = average_ranks(_patient_scores(-WIDE, metric="hd95"), "wound", "hd95")
    dice = average_ranks(_patient_scores(), "wound", "dice")
    assert list(hd95["method"]) == list(dice["method"])
    np.testing.assert_allclose(hd95["average_rank"], dice["average_rank"])
    worst_first = average_ranks(_patient_scores(WIDE, metric="hd95"), "wound", "hd95")
    assert worst_first.iloc[-1]["method"] == "gradnorm"


def test_incomplete_patients_are_dropped_and_small_designs_not_assessed():
    wide = WIDE.copy()
    wide.loc["pat0", "pcgrad"] = np.nan
    out = friedman_test(_patient_scores(wide), "wound", "dice").iloc[0]
    assert out["n_patients"] == 6
    two = friedman_test(_patient_scores(WIDE[["stl", "gradnorm"]]), "wound", "dice").iloc[0]
    assert two["status"].startswith("not assessed") and np.isnan(two["p"])
    one = friedman_test(_patient_scores(WIDE.iloc[:1]), "wound", "dice").iloc[0]
    assert one["status"].startswith("not assessed")
    assert posthoc(_patient_scores(WIDE.iloc[:1]), "wound", "dice").empty


def test_works_on_patient_level_scores():
    rows = [
        {
            "sample_id": f"{patient}_{i}",
            "patient_id": patient,
            "method": method,
            "backbone": "unet",
            "seed": seed,
            "target": "wound",
            "metric": "dice",
            "value": WIDE.loc[patient, method] + 0.01 * (i - 0.5) + 0.001 * seed,
        }
        for patient in WIDE.index
        for method in WIDE.columns
        for i in range(2)
        for seed in range(2)
    ]
    patients = patient_level(pd.DataFrame(rows), "dice")
    out = friedman_test(patients, "wound", "dice").iloc[0]
    expected = stats.friedmanchisquare(*(WIDE[m] for m in ["stl", "ew", "gradnorm", "pcgrad"]))
    assert out["p"] == pytest.approx(expected.pvalue)
