"""The canonical format's validator: bad input stops with an error naming the file."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from wing.config import DataConfig, RawConfig
from wing.data.format import DatasetError, read_index_mask, validate_dataset
from wing.data.sources import prepare_dataset


def test_valid_dataset_passes(dataset: Path):
    metadata = validate_dataset(dataset)
    assert len(metadata) == 8 and set(metadata.columns) >= {"sample_id", "patient_id"}


def expect_error(root: Path, file_part: str, problem_part: str):
    with pytest.raises(DatasetError) as error:
        validate_dataset(root)
    assert file_part in str(error.value.path)
    assert problem_part in str(error.value)


def test_missing_mask(dataset: Path):
    (dataset / "tissue_masks" / "P01_V2.png").unlink()
    expect_error(dataset, "tissue_masks/P01_V2.png", "missing")


def test_mask_size_differs_from_image(dataset: Path):
    Image.fromarray(np.zeros((20, 32), np.uint8), mode="L").save(dataset / "wound_masks/P00_V1.png")
    expect_error(dataset, "wound_masks/P00_V1.png", "must match their image")


def test_tissue_values_outside_legend(dataset: Path):
    mask = np.full((32, 32), 7, np.uint8)
    Image.fromarray(mask, mode="L").save(dataset / "tissue_masks/P02_V1.png")
    expect_error(dataset, "tissue_masks/P02_V1.png", "outside the legend")


def test_wound_values_outside_legend(dataset: Path):
    Image.fromarray(np.full((32, 32), 2, np.uint8), mode="L").save(
        dataset / "wound_masks/P02_V1.png"
    )
    expect_error(dataset, "wound_masks/P02_V1.png", "outside the wound legend")


def test_unreadable_image(dataset: Path):
    path = dataset / "images" / "P03_V1.png"
    path.write_bytes(path.read_bytes()[:60])  # truncated PNG
    expect_error(dataset, "images/P03_V1.png", "unreadable or truncated")


def test_rgb_mask_where_index_mask_expected(dataset: Path):
    Image.fromarray(np.zeros((32, 32, 3), np.uint8), mode="RGB").save(
        dataset / "tissue_masks/P00_V2.png"
    )
    expect_error(dataset, "tissue_masks/P00_V2.png", "single-channel")


def test_metadata_row_without_patient_id(dataset: Path):
    metadata = pd.read_csv(dataset / "metadata.csv", dtype=str)
    metadata.loc[3, "patient_id"] = None
    metadata.to_csv(dataset / "metadata.csv", index=False)
    expect_error(dataset, "metadata.csv", "line 5 has no patient_id")


def test_unlisted_file(dataset: Path):
    shutil.copy(dataset / "images/P00_V1.png", dataset / "images/extra.png")
    expect_error(dataset, "images/extra.png", "not listed")


def test_missing_legend_and_folder(dataset: Path, tmp_path: Path):
    expect_error(tmp_path / "nowhere", "nowhere", "does not exist")
    (dataset / "legend.json").unlink()
    expect_error(dataset, "legend.json", "missing")


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(values=st.lists(st.integers(0, 255), min_size=1, max_size=6))
def test_validator_accepts_exactly_the_legend(dataset: Path, values: list[int]):
    """Any tissue value in {0..4, 255} passes; any other value fails, naming the mask."""
    mask = np.resize(np.array(values, np.uint8), (32, 32))
    path = dataset / "tissue_masks" / "P01_V1.png"
    Image.fromarray(mask, mode="L").save(path)
    assert np.array_equal(read_index_mask(path), mask)
    if set(values) <= {0, 1, 2, 3, 4, 255}:
        validate_dataset(dataset)
    else:
        expect_error(dataset, "tissue_masks/P01_V1.png", "outside the legend")


def test_failed_prepare_keeps_earlier_output(dataset: Path, tmp_path: Path):
    """A bad dataset stops prepare and leaves the previous prepared dataset and split intact."""
    out = tmp_path / "prepared" / "cohort"
    split = tmp_path / "prepared" / "split.csv"
    config = DataConfig(source="folder", raw=RawConfig(folder=str(dataset)), root=str(out))
    prepare_dataset(config, split)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    split_before = split.read_bytes()

    (dataset / "wound_masks" / "P01_V1.png").unlink()
    with pytest.raises(DatasetError, match="wound_masks/P01_V1.png: missing"):
        prepare_dataset(config, split)
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before and split.read_bytes() == split_before
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temp left
