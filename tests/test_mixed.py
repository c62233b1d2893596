"""Secondary mixed-model analysis (wing.statistics.mixed) on simulated scores."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.multitest import multipletests

from wing.statistics.mixed import MIXED_COLUMNS, mixed_model_comparison

EFFECTS = {"gradnorm": 0.05, "ew": 0.03, "stl": 0.0}  # the reference is 0.05 above stl


def _simulated(
    n_patients: int = 8, images: int = 3, seeds: int = 3, metric: str = "dice", seed: int = 0
) -> pd.DataFrame:
    """value = 0.7 + method effect + patient + image-in-patient + seed noise."""
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_patients):
        patient = rng.normal(0, 0.08)
        for i in range(images):
            image = rng.normal(0, 0.04)
            for method, effect in EFFECTS.items():
                for s in range(seeds):
                    value = 0.7 + effect + patient + image + rng.normal(0, 0.01)
                    if metric == "hd95":
                        value = 20.0 - 100 * (value - 0.7)  # lower is better
                    rows.append(
                        {
                            "sample_id": f"p{p}_i{i}",
                            "patient_id": f"p{p}",
                            "target": "wound",
                            "metric": metric,
                            "value": value,
                            "backbone": "unet",
                            "method": method,
                            "seed": s,
                        }
                    )
    return pd.DataFrame(rows)


def test_recovers_the_method_effects():
    scores = _simulated()
    out = mixed_model_comparison(scores, reference="gradnorm")
    assert list(out.columns) == MIXED_COLUMNS
    rows = out.set_index("method")
    assert list(rows.index) == ["stl", "ew"]
    means = scores.groupby("method")["value"].mean()
    for method, truth in (("stl", 0.05), ("ew", 0.02)):
        row = rows.loc[method]
        assert row["estimate"] == pytest.approx(truth, abs=0.005)
        assert abs(row["estimate"] - truth) < 3 * row["se"]
        # balanced design: the fixed effect is the difference of the marginal means
        assert row["estimate"] == pytest.approx(means["gradnorm"] - means[method], abs=1e-6)
        assert row["ci_low"] < row["estimate"] < row["ci_high"]
        assert row["p"] < 1e-6
    assert set(rows["status"]) == {"estimated"}
    assert rows["converged"].all()
    first = rows.iloc[0]
    assert (first["n_patients"], first["n_images"], first["n_seeds"]) == (8, 24, 3)
    assert first["n_observations"] == 8 * 3 * 3 * 3
    np.testing.assert_allclose(out["p_holm"], multipletests(out["p"], method="holm")[1])
    assert out["z"].to_numpy() == pytest.approx((out["estimate"] / out["se"]).to_numpy())


def test_hd95_estimates_are_oriented_towards_the_reference():
    out = mixed_model_comparison(_simulated(metric="hd95"), metric="hd95").set_index("method")
    assert not out["higher_is_better"].any()
    assert out.loc["stl", "estimate"] == pytest.approx(5.0, abs=0.5)  # stl's distance is larger


def test_checkpoint_and_nan_rows_are_left_out():
    scores = _simulated(n_patients=4, images=2, seeds=2)
    noisy = scores.assign(checkpoint="last", value=0.0)
    both = pd.concat([scores.assign(checkpoint="best"), noisy], ignore_index=True)
    both.loc[0, "value"] = np.nan
    out = mixed_model_comparison(both).set_index("method")
    assert out.loc["stl", "n_observations"] == len(scores) - 1
    assert out.loc["stl", "estimate"] == pytest.approx(0.05, abs=0.01)


def test_a_single_patient_is_not_estimable():
    out = mixed_model_comparison(_simulated(n_patients=1))
    assert len(out) == 2
    assert out["status"].str.startswith("not estimable").all()
    assert out["estimate"].isna().all() and out["p_holm"].isna().all()


def test_warnings_are_recorded_not_raised():
    # No image or patient variance at all: the fit sits on the boundary and says so.
    scores = _simulated(n_patients=3, images=2, seeds=2).assign(value=lambda f: 0.5)
    scores.loc[scores["method"] == "stl", "value"] = 0.45
    scores["value"] += np.random.default_rng(1).normal(0, 1e-3, len(scores))
    out = mixed_model_comparison(scores)
    assert isinstance(out.loc[0, "warnings"], str)
    assert out["converged"].dtype == bool


def test_degenerate_scores_give_not_estimable_rows_not_errors():
    constant = _simulated(n_patients=3, images=1, seeds=1).assign(value=0.5)
    out = mixed_model_comparison(constant)
    assert out["status"].str.startswith("not estimable").all()
    assert out["estimate"].isna().all() and not out["converged"].any()
