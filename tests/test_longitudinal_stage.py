"""The longitudinal stage's glue (wing.longitudinal.collect) and figures
(wing.figures.longitudinal): held-out patients only, every run measured, LUTSeg parts that
say why they were not assessed, and tables whose numbers follow by hand."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from test_evaluate import _config, _save_constant

from conftest import make_dataset
from wing.config import RawConfig
from wing.figures.longitudinal import (
    bland_altman_points,
    plot_bland_altman,
    plot_not_assessed,
    plot_tissue_composition,
    plot_trajectories,
)
from wing.longitudinal import collect
from wing.longitudinal.measures import REFERENCE


@pytest.fixture
def study(tmp_path):
    """A 6-patient, 3-visit dataset split 2/2/2 by patient, and an ew run predicting wound and
    granulation everywhere."""
    root = tmp_path / "dataset"
    rows = make_dataset(root, n_patients=6, visits=3, size=32)
    patients = sorted(rows["patient_id"].unique())
    role = dict(zip(patients, ["train"] * 2 + ["validation"] * 2 + ["test"] * 2, strict=True))
    split = rows[["sample_id", "patient_id"]].assign(split=rows["patient_id"].map(role))
    split_path = tmp_path / "split.csv"
    split.to_csv(split_path, index=False)
    for task in ("wound", "tissue"):
        _save_constant(
            tmp_path / "runs/attention_unet/ew/seed0/wound+tissue" / f"best_{task}.pt",
            {"wound": 1, "tissue": 1},
        )
    config = _config(root)
    config = dataclasses.replace(config, train=dataclasses.replace(config.train, methods=("ew",)))
    return config, tmp_path / "runs", split_path, split


def test_measures_are_of_held_out_patients_from_every_source(study):
    config, runs, split_path, split = study
    measures = collect.collect_measures(config, runs, split_path)
    test = set(split.loc[split["split"] == "test", "patient_id"])
    assert set(measures["patient_id"]) == test
    assert set(measures["source"]) == {REFERENCE, "ew"}  # no truth columns in this dataset
    ew = measures[measures["source"] == "ew"]
    assert (ew["wound_area_px"] == 32 * 32).all()  # wound predicted everywhere
    assert (ew["fraction_granulation"] == 1.0).all()
    assert set(ew["backbone"]) == {"attention_unet"} and set(ew["checkpoint"]) == {"best"}
    assert len(measures) == 2 * len(ew) == 2 * 2 * 3


def test_a_training_patient_in_the_measures_stops_the_stage(study):
    _, _, _, split = study
    leaked = split[split["split"] == "train"].head(1).assign(source=REFERENCE)
    with pytest.raises(ValueError, match="held-out"):
        collect.require_held_out(leaked, split)
    collect.require_held_out(split[split["split"] == "test"], split)


def test_missing_design_says_why():
    split = pd.DataFrame(
        {"patient_id": list("AABBCC"), "split": ["test"] * 6, "sample_id": list("123456")}
    )
    assert collect.missing_design(pd.DataFrame({"visit": [1]}), split) == ""
    assert "no visit" in collect.missing_design(pd.DataFrame({"x": [1]}), split)
    one_visit = split.drop_duplicates("patient_id")
    assert "fewer than 3" in collect.missing_design(pd.DataFrame({"visit": [1]}), one_visit)


def test_composition_dynamics_by_hand():
    measures = pd.DataFrame(
        {
            "patient_id": ["A", "A", "A", "B", "B"],
            "visit": [1, 2, 3, 1, 2],
            "fraction_slough": [0.5, 0.3, 0.2, 0.1, 0.4],
        }
    )
    row = collect.composition_dynamics(measures, ["slough"], "toy").iloc[0]
    assert row["visits"] == 5 and row["patients"] == 2
    assert row["share_median"] == pytest.approx(0.3)
    # changes: A 0.2, 0.1; B 0.3 -> median 0.2
    assert row["change_median_abs"] == pytest.approx(0.2)


def test_photograph_errors_against_the_clinicians_spread():
    measures = pd.DataFrame(
        {
            "sample_id": ["a", "b", "a", "b"],
            "source": [REFERENCE, REFERENCE, "ew", "ew"],
            "wound_fraction": [0.2, 0.4, 0.25, 0.5],
            "fraction_slough": [0.5, 0.5, 0.5, 0.9],
        }
    )
    spread = pd.DataFrame(
        {"measure": ["wound_fraction", "share_slough"], "median_abs_difference": [0.1, 0.1]}
    )
    table = collect.photograph_errors(measures, ["slough"], spread).set_index("measure")
    assert table.loc["wound_fraction", "median_abs_error"] == pytest.approx(0.075)
    assert table.loc["wound_fraction", "verdict"] == collect.HUMAN
    assert table.loc["fraction_slough", "median_abs_error"] == pytest.approx(0.2)
    assert table.loc["fraction_slough", "verdict"] == collect.BEYOND


def test_lutseg_parts_without_the_data_are_not_assessed(study, tmp_path):
    config, runs, _, _ = study
    absent = RawConfig(lutseg=str(tmp_path / "no1"), lutseg_annotations=str(tmp_path / "no2"))
    config = dataclasses.replace(config, data=dataclasses.replace(config.data, raw=absent))
    tables = collect.lutseg_analysis(config, pd.DataFrame(), ["granulation"], runs)
    status = tables["status"].set_index("part")
    assert (status["status"] == "not assessed").all()
    assert str(tmp_path / "no2") in status.loc["annotations", "reason"]
    assert all(tables[name].empty for name in collect.LUTSEG_PARTS)


def _toy_measures() -> pd.DataFrame:
    rows = []
    for patient, rate in (("P1", 0.02), ("P2", 0.05)):
        for visit, day in enumerate((0, 14, 28), start=1):
            for source, scale in ((REFERENCE, 1.0), ("truth", 1.1), ("gradnorm", 0.9)):
                area = 1000 * np.exp(-rate * day) * scale
                rows.append(
                    {
                        "sample_id": f"{patient}_{visit}",
                        "patient_id": patient,
                        "visit": visit,
                        "visit_day": day,
                        "source": source,
                        "wound_area_px": area,
                        "log_wound_area": np.log(area),
                        "fraction_granulation": 0.5 + 0.1 * visit / 3,
                        "fraction_slough": 0.5 - 0.1 * visit / 3,
                    }
                )
    return pd.DataFrame(rows)


def test_figures_draw_one_panel_per_patient_and_method():
    measures = _toy_measures()
    trajectories = plot_trajectories(measures)
    assert isinstance(trajectories, Figure)
    assert sum(ax.get_visible() for ax in trajectories.axes) == 2
    composition = plot_tissue_composition(
        measures, ["granulation", "slough"], [REFERENCE, "gradnorm"]
    )
    assert len(composition.axes) == 2 * 2
    points = bland_altman_points(measures, "gradnorm", "log_wound_area")
    assert np.allclose(points["difference"], np.log(0.9))
    assert len(plot_bland_altman(measures, ["gradnorm"]).axes) == 1
    assert "not assessed" in plot_not_assessed("x", "why").axes[0].texts[0].get_text()
