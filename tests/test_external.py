"""External validation (wing.evaluation.external): trained runs scored on other datasets.

The networks are tiny Attention-UNets whose heads predict one class everywhere (the helper of
test_evaluate), so every expected score follows from the reference masks by hand.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_evaluate import SIZE, TISSUES, _config, _save_constant

from conftest import REAL_DATA, ROOT, SHARED_DATA, make_dataset
from wing.config import ConfigError, RawConfig, load_config
from wing.data.format import Legend, write_legend, write_metadata, write_sample
from wing.evaluation import external


def _runs(runs: Path, wound: int = 1, tissue: int = 1) -> None:
    """An ``ew`` run predicting ``wound`` / ``tissue`` everywhere, and a ``gradnorm`` run
    predicting wound 0 / tissue 0 (so WING-MTL always loses)."""
    _save_constant(
        runs / "attention_unet" / "ew" / "seed0" / "wound+tissue" / "best_wound.pt",
        {"wound": wound, "tissue": tissue},
    )
    _save_constant(
        runs / "attention_unet" / "ew" / "seed0" / "wound+tissue" / "best_tissue.pt",
        {"wound": wound, "tissue": tissue},
    )
    for task in ("wound", "tissue"):
        _save_constant(
            runs / "attention_unet" / "gradnorm" / "seed0" / "wound+tissue" / f"best_{task}.pt",
            {"wound": 0, "tissue": 0},
        )


def _external_folder(root: Path, classes: tuple[str, ...], wound_only: bool) -> Path:
    """Four 20x30 images of two patients: the left half is wound; tissue = class 1 there
    (or unlabelled everywhere when ``wound_only``)."""
    rng = np.random.default_rng(1)
    rows = []
    for i in range(4):
        wound = np.zeros((20, 30), np.uint8)
        wound[:, :15] = 1
        tissue = np.full_like(wound, 255) if wound_only else wound.copy()
        image = (rng.random((20, 30, 3)) * 255).astype(np.uint8)
        write_sample(root, f"X{i}", image, wound, tissue)
        rows.append({"sample_id": f"X{i}", "patient_id": f"Q{i // 2}"})
    write_legend(root, Legend(classes))
    write_metadata(root, pd.DataFrame(rows))
    return root


def _with_external(config, folder: Path, sources=("folder",)):
    data = dataclasses.replace(config.data, raw=RawConfig(folder=str(folder)))
    evaluate = dataclasses.replace(config.evaluate, external=tuple(sources))
    train = dataclasses.replace(config.train, methods=("ew", "gradnorm"))
    return dataclasses.replace(config, data=data, evaluate=evaluate, train=train)


@pytest.fixture
def trained(tmp_path):
    """The training dataset (its legend is the model's) and the runs."""
    root = tmp_path / "train"
    make_dataset(root)
    _runs(tmp_path / "runs")
    return root, tmp_path / "runs"


def test_match_classes_by_name():
    shared, predicted, reference = external.match_classes(
        ("granulation", "slough", "necrosis"), ("slough", "other", "granulation")
    )
    assert shared == ("slough", "granulation")
    # model: 1 granulation -> 2, 2 slough -> 1, 3 necrosis (not labelled there) -> none
    assert predicted[[0, 1, 2, 3]].tolist() == [0, 2, 1, 0]
    # dataset: 1 slough -> 1, 2 other (the model cannot predict it) -> ignored, 3 -> 2
    assert reference[[0, 1, 2, 3, 255]].tolist() == [0, 1, 255, 2, 255]


def test_wound_only_dataset_gets_wound_scores_only(trained, tmp_path):
    root, runs = trained
    folder = _external_folder(tmp_path / "wound_only", TISSUES, wound_only=True)
    config = _with_external(_config(root), folder)
    scores, pooled, status = external.evaluate_external(config, runs)
    assert status.loc[0, "status"] == external.ASSESSED and status.loc[0, "tasks"] == "wound"
    assert set(scores["target"]) == {"wound"} and set(pooled["target"]) == {"wound"}
    dice = scores.query("metric == 'dice'").groupby("method")["value"]
    # ew predicts wound everywhere: Dice = 2*300 / (600 + 300) = 2/3; gradnorm predicts none
    assert dice.min()["ew"] == pytest.approx(2 / 3) and dice.max()["ew"] == pytest.approx(2 / 3)
    assert dice.max()["gradnorm"] == 0.0
    assert set(scores["patient_id"]) == {"Q0", "Q1"} and len(scores.query("metric == 'dice'")) == 8


def test_tissue_is_scored_on_the_shared_classes(trained, tmp_path):
    root, runs = trained
    # the dataset's class 1 is "other", which the model cannot predict: all of it is ignored,
    # so no shared class has a reference pixel; ew's granulation prediction is a false positive
    folder = _external_folder(tmp_path / "other", ("other", "granulation"), wound_only=False)
    config = _with_external(_config(root), folder)
    scores, _, status = external.evaluate_external(config, runs)
    assert status.loc[0, "tissue_classes"] == "granulation"
    assert set(scores["target"]) == {"wound", "granulation", "tissue_mean"}
    granulation = scores.query("target == 'granulation' and metric == 'dice'")
    assert (granulation.query("method == 'ew'")["value"] == 0.0).all()  # predicted, not there
    assert granulation.query("method == 'gradnorm'")["value"].isna().all()  # both empty


def test_missing_raw_folder_is_not_assessed(trained, tmp_path):
    root, runs = trained
    config = _with_external(_config(root), tmp_path / "absent")
    scores, pooled, status = external.evaluate_external(config, runs)
    assert scores.empty and pooled.empty
    assert status.loc[0, "status"] == external.NOT_ASSESSED
    assert str(tmp_path / "absent") in status.loc[0, "reason"]


def test_bad_external_dataset_names_the_file(trained, tmp_path):
    root, runs = trained
    folder = _external_folder(tmp_path / "bad", TISSUES, wound_only=True)
    (folder / "legend.json").unlink()
    config = _with_external(_config(root), folder)
    with pytest.raises(ValueError, match="legend.json"):
        external.evaluate_external(config, runs)


def test_comparisons_are_per_dataset_and_patient(trained, tmp_path):
    root, runs = trained
    folder = _external_folder(tmp_path / "wound_only", TISSUES, wound_only=True)
    scores, _, _ = external.evaluate_external(_with_external(_config(root), folder), runs)
    table = external.external_comparisons(scores, n_boot=200)
    assert table["dataset"].unique().tolist() == ["folder"]
    row = table.query("target == 'wound'").iloc[0]
    assert row["method"] == "ew" and row["n_patients"] == 2
    assert row["mean_difference"] == pytest.approx(-2 / 3)  # positive favours gradnorm


def test_config_refuses_unknown_or_training_source(tmp_path):
    params = (ROOT / "params.yaml").read_text()
    assert "  external: [lutseg]" in params
    bad = tmp_path / "params.yaml"
    bad.write_text(params.replace("  external: [lutseg]", "  external: [nowhere]"))
    with pytest.raises(ConfigError, match="evaluate.external names 'nowhere'"):
        load_config(bad)
    bad.write_text(params.replace("  external: [lutseg]", "  external: [synthetic]"))
    with pytest.raises(ConfigError, match="the training source"):
        load_config(bad)


@REAL_DATA
def test_lutseg_photographs_are_scored(trained):
    root, runs = trained
    config = _config(root)
    config = dataclasses.replace(
        config,
        data=dataclasses.replace(
            config.data, raw=RawConfig(lutseg=str(SHARED_DATA / "lutseg/LUTSeg/examples"))
        ),
        evaluate=dataclasses.replace(config.evaluate, external=("lutseg",)),
        train=dataclasses.replace(config.train, methods=("ew", "gradnorm")),
    )
    scores, pooled, status = external.evaluate_external(config, runs)
    row = status.iloc[0]
    assert (row["status"], row["images"], row["patients"]) == (external.ASSESSED, 13, 3)
    assert row["tasks"] == "wound+tissue"
    assert row["tissue_classes"] == "granulation+slough+necrosis+epithelium"
    wound = scores.query("target == 'wound' and metric == 'dice' and method == 'ew'")
    assert len(wound) == 13 and wound["value"].between(0, 1).all()
    # predicting wound everywhere scores Dice = 2|W| / (|W| + |image|) per photograph
    assert wound["value"].max() < 1.0
    assert SIZE == config.data.image_size
