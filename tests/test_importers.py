"""Importers of the public datasets: real data (when present) and failure paths.

Real-data tests read ``../shared/data`` (``conftest.SHARED_DATA``) and follow the skip policy
of ``conftest.require_shared_data`` (they run whenever the folder exists; a missing file in it
is a failure); failure paths and the label mapping use tiny datasets written in code under
``tmp_path``.
"""

from __future__ import annotations

import ast
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from conftest import REAL_DATA, SHARED_DATA
from wing.data.format import IGNORE_INDEX, DatasetError, read_legend, validate_dataset
from wing.data.importers import (
    duplicate_groups,
    import_dfutissue,
    import_fuseg,
    import_lutseg,
)
from wing.data.importers.dfutissue import assign_splits, find_crops, fuseg_wound
from wing.data.importers.fuseg import find_pairs
from wing.data.taxonomy import (
    IGNORE,
    LEGENDS,
    TAXONOMY,
    WOUND_BED,
    dataset_classes,
    legend_table,
    remap,
    taxonomy_map,
)

DFUTISSUE = SHARED_DATA / "dfutissue"
FUSEG = SHARED_DATA / "fuseg-256"
LINKS = SHARED_DATA / "links"
LUTSEG = SHARED_DATA / "lutseg" / "LUTSeg" / "examples"


def png(path: Path, array: np.ndarray, mode: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array, np.uint8), mode=mode).save(path)
    return path


def noise(seed: int, size: int = 16) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


def assert_clean(out: Path) -> None:
    """A failed import leaves its output folder empty (or never creates it)."""
    assert not out.exists() or not any(out.iterdir()), sorted(out.rglob("*"))


# ---------------------------------------------------------------- taxonomy


def test_legend_table_covers_every_source_value():
    table = legend_table()
    assert list(table.columns) == [
        "dataset",
        "source_value",
        "source_name",
        "taxonomy_class",
        "wound_bed",
    ]
    for dataset, legend in LEGENDS.items():
        rows = table[table["dataset"] == dataset]
        assert sorted(rows["source_value"]) == sorted(legend)
    assert set(table["taxonomy_class"]) - {"", IGNORE} == set(TAXONOMY)
    by_class = table.drop_duplicates("taxonomy_class").set_index("taxonomy_class")["wound_bed"]
    assert not by_class["callus"] and not by_class[""]
    assert all(by_class[c] for c in WOUND_BED)
    assert dataset_classes(taxonomy_map("dfutissue")) == ("granulation", "slough", "callus")
    assert dataset_classes(taxonomy_map("lutseg")) == (
        "granulation",
        "slough",
        "necrosis",
        "epithelium",
        "other",
    )


def test_remap_maps_to_legend_positions_and_rejects_unknown_values():
    mapping = taxonomy_map("lutseg")
    classes = dataset_classes(mapping)
    source = np.array([[0, 1, 2], [3, 4, 5], [255, 0, 3]], np.uint8)
    expected = np.array([[0, 4, 2], [1, 3, 5], [IGNORE_INDEX, 0, 1]], np.uint8)
    np.testing.assert_array_equal(remap(source, mapping, classes), expected)
    with pytest.raises(ValueError, match=r"\[7\]"):
        remap(np.array([[0, 7]], np.uint8), mapping, classes)
    with pytest.raises(ValueError, match="not in the legend"):
        remap(source, mapping, ("granulation",))


# DFUTissue's published legend (shared/data/README.md, the release's Citation.txt): 0 background,
# 1 fibrin, 2 granulation, 3 callus; the compendium calls fibrin slough. Written out here, not
# read from wing.data.taxonomy, so that a fibrin <-> granulation swap there fails.
DFUTISSUE_CLASSES = {0: None, 1: "slough", 2: "granulation", 3: "callus"}


def assert_dfutissue_mapping(source: np.ndarray, tissue: np.ndarray, legend, where: str) -> set:
    """Every pixel of each source value holds that value's own class; the values seen."""
    seen = set()
    for value, taxonomy_class in DFUTISSUE_CLASSES.items():
        expected = 0 if taxonomy_class is None else list(legend).index(taxonomy_class) + 1
        written = np.unique(tissue[source == value]).tolist()
        assert written in ([], [expected]), (
            f"{where}: DFUTissue value {value} should become {taxonomy_class or 'background'} "
            f"(canonical {expected}), got {written}"
        )
        seen |= {value} if written else set()
    return seen


def test_dfutissue_source_values_map_to_their_own_classes():
    assert taxonomy_map("dfutissue") == DFUTISSUE_CLASSES
    assert LEGENDS["dfutissue"][1][0] == "fibrin" and LEGENDS["dfutissue"][2][0] == "granulation"
    legend = dataset_classes(taxonomy_map("dfutissue"))
    source = np.array([[0, 1, 2, 3], [3, 2, 1, 0]], np.uint8)
    tissue = remap(source, taxonomy_map("dfutissue"), legend)
    assert assert_dfutissue_mapping(source, tissue, legend, "remap") == {0, 1, 2, 3}
    names = ("background", *legend)  # canonical index i is the i-th legend class
    for value, name in ((0, "background"), (1, "slough"), (2, "granulation"), (3, "callus")):
        assert {names[i] for i in tissue[source == value]} == {name}


# ---------------------------------------------------------------- DFUTissue, real data


@pytest.fixture(scope="module")
def dfutissue(tmp_path_factory, shared_data) -> tuple[Path, pd.DataFrame]:
    out = tmp_path_factory.mktemp("dfutissue") / "dataset"
    return out, import_dfutissue(DFUTISSUE, out, fuseg_root=FUSEG, links=LINKS)


def test_dfutissue_real_is_valid_and_keeps_the_authors_test_set(dfutissue):
    out, metadata = dfutissue
    written = validate_dataset(out)
    assert len(written) == 110
    assert read_legend(out).tissue_classes == ("granulation", "slough", "callus")
    assert metadata["split"].value_counts().to_dict() == {
        "train": 78,
        "validation": 16,
        "test": 16,
    }
    authors_test = sorted(p.stem for p in (DFUTISSUE / "Labeled/Images/Test").glob("*.png"))
    test = metadata[metadata["split"] == "test"]
    assert sorted(test["dfutissue_id"]) == authors_test
    assert (test["dfutissue_split"] == "Test").all()
    assert (metadata.loc[metadata["split"] != "test", "dfutissue_split"] == "TrainVal").all()
    assert metadata["patient_id"].str.startswith("fuseg:").all()
    assert (metadata.groupby("patient_id")["split"].nunique() == 1).all()


def test_dfutissue_real_tissue_values_map_class_by_class(dfutissue):
    """Pixel by pixel on every crop: fibrin -> slough, granulation -> granulation, callus."""
    out, metadata = dfutissue
    legend = read_legend(out).tissue_classes
    seen = set()
    for row in metadata.itertuples():
        annotation = (
            DFUTISSUE / "Labeled/Annotations" / row.dfutissue_split / f"{row.dfutissue_id}.png"
        )
        source = np.array(Image.open(annotation))
        tissue = np.array(Image.open(out / "tissue_masks" / f"{row.sample_id}.png"))
        assert source.shape == tissue.shape, row.sample_id
        seen |= assert_dfutissue_mapping(source, tissue, legend, row.sample_id)
    assert seen == {0, 1, 2, 3}


def test_dfutissue_fuseg_wound_masks_agree_with_measured_links(dfutissue):
    _, metadata = dfutissue
    links = pd.read_csv(LINKS / "dfutissue_in_fuseg.csv", dtype={"dfutissue_id": str})
    merged = metadata.merge(links, on="dfutissue_id", suffixes=("", "_links"))
    assert len(merged) == 110
    assert (merged["fuseg_id"] == merged["fuseg_id_links"].astype(str).str.zfill(4)).all()
    ours, theirs = merged["wound_agreement_dice"], merged["dice_fibrin_granulation"]
    assert abs(ours.median() - theirs.median()) < 0.05
    assert (ours - theirs).abs().mean() < 0.05  # crop by crop too (256 px vs 512 px labels)
    test = merged[merged["split"] == "test"]
    test_ours, test_theirs = test["wound_agreement_dice"], test["dice_fibrin_granulation"]
    assert abs(test_ours.median() - test_theirs.median()) < 0.05
    assert test_ours.median() > 0.85


def test_dfutissue_validation_is_seeded(dfutissue):
    _, metadata = dfutissue
    crops = find_crops(DFUTISSUE, LINKS)
    again = {c.id for s, c in assign_splits(crops, 16, 0) if s == "validation"}
    other = {c.id for s, c in assign_splits(crops, 16, 1) if s == "validation"}
    assert again == set(metadata.loc[metadata["split"] == "validation", "dfutissue_id"])
    assert again != other and len(other) == 16


@REAL_DATA
def test_dfutissue_tissue_union_wound(tmp_path: Path):
    out = tmp_path / "dataset"
    metadata = import_dfutissue(DFUTISSUE, out, links=LINKS, wound_label="tissue_union")
    validate_dataset(out)
    assert metadata["wound_agreement_dice"].isna().all()
    assert metadata["split"].value_counts()["validation"] == 16
    for sample_id in metadata["sample_id"].iloc[:10]:
        wound = np.array(Image.open(out / "wound_masks" / f"{sample_id}.png"))
        tissue = np.array(Image.open(out / "tissue_masks" / f"{sample_id}.png"))
        np.testing.assert_array_equal(wound, np.isin(tissue, (1, 2)))  # granulation, slough


def test_dfutissue_fuseg_wound_needs_fuseg_and_links(tmp_path: Path):
    with pytest.raises(ValueError, match="fuseg_root.*links"):
        import_dfutissue(tmp_path, tmp_path / "out", links=tmp_path)
    assert_clean(tmp_path / "out")


# ---------------------------------------------------------------- FUSeg, real data


@REAL_DATA
def test_fuseg_real_subset_is_valid_and_groups_never_cross_splits(tmp_path: Path):
    groups = pd.read_csv(LINKS / "fuseg_duplicates.csv", dtype={"id": str})
    only = [*zip(groups["split"], groups["id"], strict=True), ("train", "0915"), "validation/0233"]
    out = tmp_path / "fuseg"
    metadata = import_fuseg(FUSEG, out, only=only)
    validate_dataset(out)  # includes: no patient_id in two splits
    assert len(metadata) == len(groups) + 2
    assert read_legend(out).tissue_classes == TAXONOMY
    crossing = groups.groupby("group")["split"].nunique()
    crossing = crossing[crossing > 1].index
    moved = groups[groups["group"].isin(crossing) & (groups["split"] == "validation")]
    rows = metadata.set_index(["fuseg_split", "fuseg_id"])
    assert len(crossing) == 7
    assert (rows.loc[list(zip(moved["split"], moved["id"], strict=True)), "split"] == "train").all()
    assert rows.loc[("validation", "0233"), "split"] == "validation"
    tissue = np.array(Image.open(out / "tissue_masks" / "fuseg_train_0915.png"))
    assert (tissue == IGNORE_INDEX).all()
    wound = np.array(Image.open(out / "wound_masks" / "fuseg_train_0915.png"))
    assert set(np.unique(wound)) <= {0, 1} and wound.shape == (256, 256)
    excluded = import_fuseg(
        FUSEG, tmp_path / "excluded", only=only, exclude=["fuseg:train/0111", ("train", "0915")]
    )
    assert {"fuseg_train_0111", "fuseg_train_0386", "fuseg_train_0889"}.isdisjoint(
        excluded["sample_id"]
    )
    assert len(excluded) == len(metadata) - 4


@REAL_DATA
def test_fuseg_512_release_layout(tmp_path: Path):
    """The 512-px release: images and labels at 512, crop boxes scaled accordingly."""
    root = tmp_path / "fuseg-512"
    for split, id_ in (("train", "0915"), ("validation", "0964")):
        for kind, resample in (("images", Image.Resampling.LANCZOS), ("labels", None)):
            image = Image.open(FUSEG / split / kind / f"{id_}.png")
            resample = resample or Image.Resampling.NEAREST
            (root / split / kind).mkdir(parents=True, exist_ok=True)
            image.resize((512, 512), resample).save(root / split / kind / f"{id_}.png")
    metadata = import_fuseg(root, tmp_path / "out")
    validate_dataset(tmp_path / "out")
    assert metadata["split"].tolist() == ["train", "validation"]
    image = Image.open(tmp_path / "out" / "images" / "fuseg_train_0915.png")
    assert image.size == (512, 512)
    crops = {c.id: c for c in find_crops(DFUTISSUE, LINKS, duplicate_groups(root))}
    pairs_512, pairs_256 = find_pairs(root), find_pairs(FUSEG)
    for crop_id in ("0914", "0963"):
        crop = crops[crop_id]
        size = Image.open(crop.image).size[::-1]
        at_512 = fuseg_wound(crop, pairs_512, size)
        at_256 = fuseg_wound(crop, pairs_256, size)
        assert at_512.shape == size and (at_512 == at_256).mean() > 0.97


# ---------------------------------------------------------------- LUTSeg, real data


@REAL_DATA
def test_lutseg_real_patients_visits_and_legend(tmp_path: Path):
    out = tmp_path / "lutseg"
    metadata = import_lutseg(LUTSEG, out)
    validate_dataset(out)
    assert len(metadata) == 13 and "split" not in metadata.columns
    visits = metadata.groupby("patient_id")["visit"].apply(sorted).to_dict()
    assert visits == {
        "lutseg:10": [1, 2, 3],
        "lutseg:20": [1, 2, 3, 4, 6, 7],
        "lutseg:34": [1, 2, 3, 4],
    }
    assert metadata["visit_day"].isna().all()
    assert read_legend(out).tissue_classes == dataset_classes(taxonomy_map("lutseg"))
    source = np.array(Image.open(LUTSEG / "Masks/Patient_20/P20T_1.png"))
    tissue = np.array(Image.open(out / "tissue_masks/lutseg_P20T_1.png"))
    necrotic = source == 4
    assert necrotic.any() and (tissue[necrotic] == 3).all()  # necrosis is legend class 3
    wound = np.array(Image.open(out / "wound_masks/lutseg_P20T_1.png"))
    source_wound = np.array(Image.open(LUTSEG / "Wound_Masks/Patient_20/P20T_1.png"))
    np.testing.assert_array_equal(wound, source_wound == 255)


# ---------------------------------------------------------------- tiny fixtures


def make_dfutissue(root: Path) -> Path:
    """Three TrainVal crops and one Test crop, 16 px, all four classes."""
    labels = np.zeros((16, 16), np.uint8)
    labels[4:8, 4:12], labels[8:12, 4:12], labels[2:4, :] = 1, 2, 3
    for folder, ids in (("TrainVal", ("0001", "0002", "0003")), ("Test", ("0004",))):
        for id_ in ids:
            png(root / "Labeled/Images" / folder / f"{id_}.png", noise(int(id_)))
            png(root / "Labeled/Annotations" / folder / f"{id_}.png", labels)
    return root


def make_fuseg(root: Path) -> Path:
    """Two train and two validation images, RGB 0/255 labels as in the release."""
    label = np.zeros((16, 16, 3), np.uint8)
    label[4:12, 4:12] = 255
    for split, ids in (("train", ("0011", "0012")), ("validation", ("0001", "0002"))):
        for id_ in ids:
            png(root / split / "images" / f"{id_}.png", noise(int(id_) + 100))
            png(root / split / "labels" / f"{id_}.png", label)
    return root


def make_lutseg(root: Path) -> Path:
    """Two patients with two visits each, JPEG photographs as in the release."""
    tissue = np.zeros((16, 16), np.uint8)
    tissue[4:12, 4:8], tissue[4:12, 8:12], tissue[0, 0] = 3, 1, 255
    wound = np.where(tissue == 255, 0, (tissue > 0) * 255).astype(np.uint8)
    for patient in (1, 2):
        for visit in (1, 2):
            name = f"P{patient}T_{visit}"
            folder = f"Patient_{patient}"
            path = root / "Images" / folder / f"{name}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(noise(10 * patient + visit)).save(path, quality=95)
            png(root / "Masks" / folder / f"{name}.png", tissue)
            png(root / "Wound_Masks" / folder / f"{name}.png", wound)
    return root


def run_dfutissue(root: Path, out: Path):
    return import_dfutissue(root, out, wound_label="tissue_union", validation_count=1)


def test_tiny_fixtures_import(tmp_path: Path):
    meta = run_dfutissue(make_dfutissue(tmp_path / "dfu"), tmp_path / "o1")
    assert meta["split"].value_counts().to_dict() == {"train": 2, "validation": 1, "test": 1}
    assert meta["patient_id"].tolist() == [f"dfutissue:000{i}" for i in range(1, 5)]
    fuseg = import_fuseg(make_fuseg(tmp_path / "fuseg"), tmp_path / "o2")
    lutseg = import_lutseg(make_lutseg(tmp_path / "lut"), tmp_path / "o3")
    for out in ("o1", "o2", "o3"):
        validate_dataset(tmp_path / out)
    assert fuseg["split"].tolist() == ["train", "train", "validation", "validation"]
    assert lutseg["patient_id"].tolist() == ["lutseg:1"] * 2 + ["lutseg:2"] * 2


def test_dfutissue_import_maps_each_value_to_its_class(tmp_path: Path):
    """Through the importer: each region of the tiny annotation lands on its own class."""
    root = make_dfutissue(tmp_path / "dfu")
    out = tmp_path / "out"
    run_dfutissue(root, out)
    legend = read_legend(out).tissue_classes
    assert legend == ("granulation", "slough", "callus")
    source = np.array(Image.open(root / "Labeled/Annotations/TrainVal/0001.png"))
    tissue = np.array(Image.open(out / "tissue_masks" / "dfutissue_0001.png"))
    assert assert_dfutissue_mapping(source, tissue, legend, "dfutissue_0001") == {0, 1, 2, 3}
    wound = np.array(Image.open(out / "wound_masks" / "dfutissue_0001.png"))
    np.testing.assert_array_equal(wound, np.isin(source, (1, 2)))  # fibrin or granulation


def test_fuseg_duplicates_are_grouped_not_rejected(tmp_path: Path):
    root = make_fuseg(tmp_path / "fuseg")
    shutil.copy(root / "train/images/0012.png", root / "validation/images/0002.png")
    groups = duplicate_groups(root)
    assert groups[["group", "split", "id"]].values.tolist() == [
        [1, "train", "0012"],
        [1, "validation", "0002"],
    ]
    assert groups["label_identical"].all()
    meta = import_fuseg(root, tmp_path / "out").set_index("sample_id")
    assert meta.loc["fuseg_validation_0002", "patient_id"] == "fuseg:train/0012"
    assert meta.loc["fuseg_validation_0002", "split"] == "train"  # crossing group -> train
    assert meta.loc["fuseg_validation_0001", "split"] == "validation"


def test_output_folder_must_be_empty(tmp_path: Path):
    out = tmp_path / "out"
    (out / "old").mkdir(parents=True)
    with pytest.raises(DatasetError, match="not empty"):
        import_fuseg(make_fuseg(tmp_path / "fuseg"), out)


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def rgb_of(path: Path) -> None:
    array = np.array(Image.open(path))
    png(path, np.stack([array, array * 0, array], axis=-1))


# (name, what to break, file named in the message, words of the fix)
Break = tuple[str, Callable[[Path], object], str, str]

DFUTISSUE_BREAKS: list[Break] = [
    (
        "missing pair",
        lambda r: (r / "Labeled/Annotations/TrainVal/0002.png").unlink(),
        "Annotations/TrainVal/0002.png",
        "missing",
    ),
    (
        "orphan annotation",
        lambda r: (r / "Labeled/Images/TrainVal/0003.png").unlink(),
        "Annotations/TrainVal/0003.png",
        "add the image",
    ),
    (
        "size mismatch",
        lambda r: png(r / "Labeled/Annotations/TrainVal/0003.png", np.zeros((8, 8))),
        "Annotations/TrainVal/0003.png",
        "pixel for pixel",
    ),
    (
        "unknown label value",
        lambda r: png(r / "Labeled/Annotations/TrainVal/0002.png", np.full((16, 16), 7)),
        "Annotations/TrainVal/0002.png",
        "3 callus",
    ),
    (
        "RGB annotation",
        lambda r: rgb_of(r / "Labeled/Annotations/TrainVal/0002.png"),
        "Annotations/TrainVal/0002.png",
        "not the colour Labeled/Palette",
    ),
    (
        "truncated image",
        lambda r: truncate(r / "Labeled/Images/TrainVal/0003.png"),
        "Images/TrainVal/0003.png",
        "intact copy",
    ),
    (
        "duplicate image",
        lambda r: shutil.copy(
            r / "Labeled/Images/TrainVal/0001.png", r / "Labeled/Images/Test/0004.png"
        ),
        "0001.png",
        "exact duplicate",
    ),
    (
        "empty folder",
        lambda r: [p.unlink() for p in (r / "Labeled/Images/Test").glob("*")],
        "Images/Test",
        "holds no .png",
    ),
    (
        "wrong root",
        lambda r: shutil.rmtree(r / "Labeled"),
        "Labeled",
        "Labeled/{Images,Annotations}/{TrainVal,Test}",
    ),
]


@pytest.mark.parametrize("case", DFUTISSUE_BREAKS, ids=[b[0] for b in DFUTISSUE_BREAKS])
def test_dfutissue_failure_paths(tmp_path: Path, case: Break):
    _, breaker, named, fix = case
    root = make_dfutissue(tmp_path / "dfu")
    breaker(root)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(DatasetError) as error:
        run_dfutissue(root, out)
    assert named in str(error.value) and fix in str(error.value)
    assert_clean(out)


FUSEG_BREAKS: list[Break] = [
    (
        "missing pair",
        lambda r: (r / "train/labels/0012.png").unlink(),
        "train/labels/0012.png",
        "missing",
    ),
    (
        "size mismatch",
        lambda r: png(r / "validation/labels/0002.png", np.zeros((8, 8))),
        "validation/labels/0002.png",
        "pixel for pixel",
    ),
    (
        "unknown label value (a 0/1 mask)",
        lambda r: png(r / "validation/labels/0001.png", np.eye(16)),
        "validation/labels/0001.png",
        "save the label as 0/255",
    ),
    (
        "colour label",
        lambda r: png(r / "train/labels/0012.png", noise(3)),
        "train/labels/0012.png",
        "channels differ",
    ),
    (
        "truncated image",
        lambda r: truncate(r / "validation/images/0002.png"),
        "validation/images/0002.png",
        "intact copy",
    ),
    (
        "empty folder",
        lambda r: [p.unlink() for p in (r / "validation/images").glob("*")],
        "validation/images",
        "holds no .png",
    ),
    (
        "wrong root",
        lambda r: [shutil.rmtree(r / s) for s in ("train", "validation")],
        "fuseg",
        "{train,validation}/{images,labels}",
    ),
]


@pytest.mark.parametrize("case", FUSEG_BREAKS, ids=[b[0] for b in FUSEG_BREAKS])
def test_fuseg_failure_paths(tmp_path: Path, case: Break):
    _, breaker, named, fix = case
    root = make_fuseg(tmp_path / "fuseg")
    breaker(root)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(DatasetError) as error:
        import_fuseg(root, out)
    assert named in str(error.value) and fix in str(error.value)
    assert_clean(out)


LUTSEG_BREAKS: list[Break] = [
    (
        "missing pair",
        lambda r: (r / "Wound_Masks/Patient_2/P2T_1.png").unlink(),
        "Wound_Masks/Patient_2/P2T_1.png",
        "missing",
    ),
    (
        "orphan mask",
        lambda r: png(r / "Masks/Patient_2/P2T_9.png", np.zeros((16, 16))),
        "Masks/Patient_2/P2T_9.png",
        "add the image",
    ),
    (
        "size mismatch",
        lambda r: png(r / "Masks/Patient_2/P2T_2.png", np.zeros((8, 8))),
        "Masks/Patient_2/P2T_2.png",
        "pixel for pixel",
    ),
    (
        "unknown label value",
        lambda r: png(r / "Masks/Patient_1/P1T_2.png", np.full((16, 16), 9)),
        "Masks/Patient_1/P1T_2.png",
        "5 other, 255 ignore",
    ),
    (
        "RGB mask",
        lambda r: rgb_of(r / "Masks/Patient_2/P2T_1.png"),
        "Masks/Patient_2/P2T_1.png",
        "Masks_RGB is for viewing",
    ),
    (
        "truncated image",
        lambda r: truncate(r / "Images/Patient_2/P2T_2.jpg"),
        "Images/Patient_2/P2T_2.jpg",
        "intact copy",
    ),
    (
        "duplicate image",
        lambda r: shutil.copy(r / "Images/Patient_1/P1T_1.jpg", r / "Images/Patient_2/P2T_2.jpg"),
        "P1T_1.jpg",
        "exact duplicate",
    ),
    (
        "patient mismatch",
        lambda r: (r / "Images/Patient_2/P2T_2.jpg").rename(r / "Images/Patient_2/P3T_2.jpg"),
        "P3T_2.jpg",
        "move it",
    ),
    (
        "empty folder",
        lambda r: [p.unlink() for p in (r / "Images/Patient_2").glob("*")],
        "Images/Patient_2",
        "holds no",
    ),
    (
        "wrong root",
        lambda r: shutil.rmtree(r / "Wound_Masks"),
        "Wound_Masks",
        "{Images,Masks,Wound_Masks}/Patient_N",
    ),
]


@pytest.mark.parametrize("case", LUTSEG_BREAKS, ids=[b[0] for b in LUTSEG_BREAKS])
def test_lutseg_failure_paths(tmp_path: Path, case: Break):
    _, breaker, named, fix = case
    root = make_lutseg(tmp_path / "lut")
    breaker(root)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(DatasetError) as error:
        import_lutseg(root, out)
    assert named in str(error.value) and fix in str(error.value)
    assert_clean(out)


# ---------------------------------------------------------------- real-data skip policy


def test_missing_shared_data_skips_or_fails_as_configured(monkeypatch, tmp_path: Path):
    import conftest

    monkeypatch.setattr(conftest, "SHARED_DATA", tmp_path / "absent")
    monkeypatch.setattr(conftest, "REQUIRE_SHARED_DATA", False)
    with pytest.raises(pytest.skip.Exception, match="WING_REQUIRE_SHARED_DATA=1"):
        conftest.require_shared_data()
    monkeypatch.setattr(conftest, "REQUIRE_SHARED_DATA", True)
    with pytest.raises(pytest.fail.Exception, match="WING_REQUIRE_SHARED_DATA=1 requires it"):
        conftest.require_shared_data()
    monkeypatch.setattr(conftest, "SHARED_DATA", tmp_path)  # present: no skip, whatever is in it
    assert conftest.require_shared_data() == tmp_path


SKIPS = ("skip", "skipif", "importorskip")


def skip_lines(tree: ast.AST) -> list[int]:
    """Lines calling or decorating with pytest's skip helpers (``pytest.skip(...)``,
    ``pytest.mark.skipif(...)``, ``@pytest.mark.skip``, ``pytest.importorskip(...)``)."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            lines += [node.lineno] if node.func.attr in SKIPS else []
        elif isinstance(node, ast.FunctionDef):
            lines += [
                d.lineno
                for d in node.decorator_list
                if isinstance(d, ast.Attribute) and d.attr in SKIPS
            ]
    return sorted(lines)


@pytest.mark.parametrize(
    "name",
    [
        "test_importers.py",
        "test_sources.py",
        "test_leakage.py",
        "test_label_studio.py",
        "test_external.py",
    ],
)
def test_real_data_tests_skip_only_through_the_policy(name: str):
    """No test decides on its own to skip when a file is missing under ../shared/data."""
    tree = ast.parse((Path(__file__).parent / name).read_text(encoding="utf-8"))
    assert skip_lines(tree) == [], f"{name}: skips outside conftest.require_shared_data"
    assert skip_lines(ast.parse("pytest.skip('x')\n@pytest.mark.skip\ndef f(): pass")) == [1, 2]
