"""Data sources as params.yaml selects them: each writes a valid canonical dataset."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from conftest import REAL_DATA, SHARED_DATA
from wing.config import DataConfig, RawConfig
from wing.data.format import DatasetError
from wing.data.sources import SOURCES, prepare_dataset


def raw() -> RawConfig:
    return RawConfig(
        dfutissue=str(SHARED_DATA / "dfutissue"),
        fuseg=str(SHARED_DATA / "fuseg-256"),
        links=str(SHARED_DATA / "links"),
        lutseg=str(SHARED_DATA / "lutseg/LUTSeg/examples"),
    )


def test_every_documented_source_is_registered():
    assert set(SOURCES.names()) == {
        "synthetic",
        "folder",
        "dfutissue",
        "dfutissue_fuseg",
        "fuseg",
        "lutseg",
    }
    with pytest.raises(KeyError, match="unknown data source 'kaggle'"):
        SOURCES.get("kaggle")


@REAL_DATA
def test_dfutissue_source_keeps_the_official_test_split(tmp_path: Path):
    config = DataConfig(source="dfutissue", root=str(tmp_path / "dataset"), raw=raw())
    metadata, split = prepare_dataset(config, tmp_path / "split.csv")
    assert split["split"].value_counts().to_dict() == {"train": 78, "validation": 16, "test": 16}
    assert set(metadata.loc[metadata["split"] == "test", "dfutissue_split"]) == {"Test"}
    assert split.groupby("patient_id")["split"].nunique().max() == 1
    assert pd.read_csv(tmp_path / "split.csv").shape[0] == 110


@REAL_DATA
def test_lutseg_source_splits_by_patient(tmp_path: Path):
    config = DataConfig(source="lutseg", root=str(tmp_path / "dataset"), raw=raw())
    metadata, split = prepare_dataset(config, tmp_path / "split.csv")
    assert len(metadata) == 13 and metadata["patient_id"].nunique() == 3
    assert split.groupby("patient_id")["split"].nunique().max() == 1


def test_wrong_raw_location_is_named(tmp_path: Path):
    config = DataConfig(
        source="dfutissue",
        root=str(tmp_path / "dataset"),
        raw=RawConfig(dfutissue=str(tmp_path / "nowhere"), fuseg="", links=""),
    )
    with pytest.raises(
        DatasetError, match=f"{tmp_path / 'nowhere'}: does not exist; set data.raw.dfutissue"
    ):
        prepare_dataset(config, tmp_path / "split.csv")
    assert not (tmp_path / "dataset").exists()
    config = DataConfig(source="folder", root=str(tmp_path / "dataset"))
    with pytest.raises(DatasetError, match="data.raw.folder is empty"):
        prepare_dataset(config, tmp_path / "split.csv")
