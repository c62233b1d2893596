"""No photograph crosses splits: DFUTissue crops, their FUSeg sources and FUSeg duplicates.

Every labelled DFUTissue crop is cut out of a FUSeg image, and FUSeg holds 24 groups of
byte-identical photographs (``../shared/data/links/``, measured). A dataset that trains on
FUSeg and evaluates on DFUTissue leaks unless it splits by FUSeg source photograph and its
duplicates. The checks below use the measured link tables as an independent reference and,
for the combined import, compare decoded pixels.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from conftest import REAL_DATA, SHARED_DATA
from wing.data.format import validate_dataset
from wing.data.importers import duplicate_groups, import_dfutissue_fuseg
from wing.data.importers.fuseg import find_pairs, fuseg_rows, select

DFUTISSUE = SHARED_DATA / "dfutissue"
FUSEG = SHARED_DATA / "fuseg-256"
LINKS = SHARED_DATA / "links"

# Runs whenever ../shared/data exists (a dataset missing inside it fails); see conftest.
pytestmark = REAL_DATA


@pytest.fixture(scope="module")
def combined(tmp_path_factory, shared_data) -> tuple[Path, pd.DataFrame]:
    out = tmp_path_factory.mktemp("combined") / "dataset"
    return out, import_dfutissue_fuseg(DFUTISSUE, FUSEG, LINKS, out)


@pytest.fixture(scope="module")
def links(shared_data) -> pd.DataFrame:
    return pd.read_csv(LINKS / "dfutissue_in_fuseg.csv", dtype=str)


@pytest.fixture(scope="module")
def duplicates(shared_data) -> pd.DataFrame:
    return pd.read_csv(LINKS / "fuseg_duplicates.csv", dtype={"split": str, "id": str})


def with_duplicates(images: set[tuple[str, str]], duplicates: pd.DataFrame) -> set:
    """``images`` plus every byte-identical duplicate of them (from the measured table)."""
    rows = list(zip(duplicates["group"], duplicates["split"], duplicates["id"], strict=True))
    hit = {group for group, split, id_ in rows if (split, id_) in images}
    return images | {(split, id_) for group, split, id_ in rows if group in hit}


def images_of(metadata: pd.DataFrame) -> set[tuple[str, str]]:
    """The FUSeg images (split, id) behind metadata rows (a FUSeg sample or a crop's source)."""
    return set(zip(metadata["fuseg_split"], metadata["fuseg_id"], strict=True))


def pixel_digest(path: Path) -> str:
    return hashlib.sha256(np.array(Image.open(path).convert("RGB")).tobytes()).hexdigest()


def test_duplicate_groups_match_the_measured_table(duplicates):
    groups = duplicate_groups(FUSEG)
    pd.testing.assert_frame_equal(groups, duplicates, check_dtype=False)
    assert groups["group"].nunique() == 24
    sizes = groups.groupby("group").size()
    assert (sizes == 2).sum() == 23 and (sizes == 3).sum() == 1
    assert (groups.groupby("group")["split"].nunique() > 1).sum() == 7


def test_combined_is_valid_and_keeps_dfutissue_splits(combined):
    out, metadata = combined
    validate_dataset(out)  # includes: no patient_id (leakage group) in two splits
    crops = metadata[metadata["dataset"] == "dfutissue"]
    assert crops["split"].value_counts().to_dict() == {"train": 78, "validation": 16, "test": 16}
    fuseg = metadata[metadata["dataset"] == "fuseg"]
    assert (fuseg["split"] == "train").all()
    assert len(fuseg) == 977  # 1010 minus 32 held-out sources minus 1 duplicate of them


def test_no_training_image_shares_a_leakage_group_with_evaluation(combined, links, duplicates):
    _, metadata = combined
    train = metadata[metadata["split"] == "train"]
    held = metadata[metadata["split"] != "train"]
    assert set(train["patient_id"]).isdisjoint(held["patient_id"])
    # independently of patient_id: sources (measured links) and their duplicates
    evaluated = links[links["dfutissue_id"].isin(held["dfutissue_id"])]
    sources = set(zip(evaluated["fuseg_split"], evaluated["fuseg_id"], strict=True))
    assert len(sources) == 32
    forbidden = with_duplicates(sources, duplicates)
    assert len(forbidden) == 33  # validation/0256 duplicates train/0997 (Test crop 0996)
    trained = images_of(train)
    assert forbidden.isdisjoint(trained)  # neither as a FUSeg image nor as a crop's source


def test_test_crops_from_fuseg_train_are_absent_from_training(combined, links, duplicates):
    _, metadata = combined
    test = links[links["dfutissue_split"] == "Test"]
    from_train = test[test["fuseg_split"] == "train"]
    assert len(from_train) == 15
    sources = set(zip(from_train["fuseg_split"], from_train["fuseg_id"], strict=True))
    forbidden = with_duplicates(sources, duplicates)
    fuseg = metadata[metadata["dataset"] == "fuseg"]
    kept = images_of(fuseg)
    assert forbidden.isdisjoint(kept)


def test_no_training_pixels_equal_a_held_out_source(combined, links):
    """Compare decoded pixels of every written training image with the held-out sources."""
    out, metadata = combined
    held = metadata[metadata["split"] != "train"]
    evaluated = links[links["dfutissue_id"].isin(held["dfutissue_id"])]
    held_digests = {
        pixel_digest(FUSEG / s / "images" / f"{i}.png")
        for s, i in zip(evaluated["fuseg_split"], evaluated["fuseg_id"], strict=True)
    }
    train = metadata[(metadata["split"] == "train") & (metadata["dataset"] == "fuseg")]
    for sample_id in train["sample_id"]:
        assert pixel_digest(out / "images" / f"{sample_id}.png") not in held_digests, sample_id


def test_standalone_fuseg_split_never_crosses_groups(duplicates):
    """The split ``import_fuseg`` writes for the whole release (computed without writing)."""
    pairs = find_pairs(FUSEG)
    rows = pd.DataFrame(fuseg_rows(select(pairs, duplicates), duplicates))
    assert len(rows) == 1010
    assert (rows.groupby("patient_id")["split"].nunique() == 1).all()
    assert rows["split"].value_counts().to_dict() == {"train": 817, "validation": 193}
    members = rows.dropna(subset=["duplicate_group"])
    assert len(members) == 49 and members["patient_id"].nunique() == 24
