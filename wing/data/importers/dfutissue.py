"""Importer of DFUTissue (wound tissue crops) and of DFUTissue combined with FUSeg.

Reads the labelled part of the release unchanged (repository uwm-bigdata/DFUTissueSegNet,
folder ``DFUTissue/``; cite Dhar M.K. et al., "Wound Tissue Segmentation in Diabetic Foot
Ulcer Images Using Deep Learning: A Pilot Study", arXiv 2406.16012, 2024)::

    <root>/Labeled/Images/{TrainVal,Test}/NNNN.png       RGB crops, 67-266 px, square
    <root>/Labeled/Annotations/{TrainVal,Test}/NNNN.png  single-channel class index:
                                                         0 background, 1 fibrin,
                                                         2 granulation, 3 callus

``Labeled/Palette`` (colour renderings) and ``Unlabeled/`` are not read. Every labelled
crop is cut out of a FUSeg 2021 image (see ``wing.data.importers.fuseg``); the measured
links (``../shared/data/links/dfutissue_in_fuseg.csv``: the source image of each crop and
the crop box in 512-px FUSeg coordinates) make two things possible: an independent wound
mask for each crop, and a split by source photograph.

Decisions:

- Tissue mask: remapped onto the compendium taxonomy (``wing.data.taxonomy``): fibrin ->
  slough, granulation -> granulation, callus -> callus; legend
  ``(granulation, slough, callus)``. Any other value is an error naming the file.
- Wound mask (``wound_label``): ``"fuseg"`` (default) = FUSeg's wound label of the source
  image, cut with the crop box (scaled from 512 px to the FUSeg copy's actual size) and
  resampled nearest-neighbour to the crop size, so the two tasks have independent
  annotations of one image; ``"tissue_union"`` = fibrin ∪ granulation of the crop's own
  annotation (callus is periwound, not wound). ``wound_agreement_dice`` records Dice
  between the FUSeg-derived wound and fibrin ∪ granulation (empty when FUSeg is not given);
  low values are real labelling differences (e.g. eschar counted as wound by FUSeg only).
- ``patient_id``: the leakage group of the crop's FUSeg source image (its group of
  byte-identical duplicates, else the image itself, e.g. ``fuseg:train/0915``). The groups
  are hashed from ``fuseg_root`` when given, else read from ``links/fuseg_duplicates.csv``.
  Without ``links`` it is the crop itself (``dfutissue:0914``).
- Split: the authors' Test folder is kept as ``test`` (16 crops). From TrainVal,
  ``validation_count`` crops (default 16: the authors' 70:15:15 gives 78 train / 16
  validation) become ``validation``: leakage groups (ordered by their first crop id) are
  shuffled with ``numpy.random.default_rng(seed)`` and taken whole while they fit, so no
  group crosses train/validation; the rest is ``train``. A TrainVal crop whose leakage
  group also holds a Test crop would leak into the test set: it is an error (none does in
  the release).
- Exact duplicate crops (identical pixels) are an error naming both files.

:func:`import_dfutissue_fuseg` adds every other FUSeg image as a wound-only training
sample (tissue mask all 255): the DFUTissue crops keep their split, and the FUSeg source
image of every DFUTissue *validation or test* crop is dropped together with its whole
leakage group (its byte-identical duplicates), so no photograph seen in training is
evaluated (on the release: the 32 sources plus validation/0256, a duplicate of train/0997,
i.e. 33 of 1010 FUSeg images are dropped and 977 kept). This matters: 15 of the 16 Test
crops come from FUSeg *train* images. Source images of DFUTissue *train* crops stay in
training (the same photograph trains both tasks; nothing is evaluated on it). FUSeg's own
validation images become training images too (the combined dataset is evaluated on
DFUTissue's splits). Crops and
full FUSeg images are written at their native sizes; the pipeline resizes to
``data.image_size``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from wing.data.format import DatasetError, write_sample
from wing.data.importers.common import (
    DuplicateCheck,
    check_same_size,
    dice,
    finish,
    list_files,
    output_dir,
    read_binary,
    read_index,
    read_rgb,
    require_dir,
    require_file,
)
from wing.data.importers.fuseg import (
    duplicate_groups,
    find_pairs,
    fuseg_rows,
    leakage_group,
    select,
    write_fuseg,
)
from wing.data.taxonomy import dataset_classes, remap, taxonomy_map

FOLDERS = ("TrainVal", "Test")  # the authors' folders
LAYOUT = "<root>/Labeled/{Images,Annotations}/{TrainVal,Test}/NNNN.png (the DFUTissue release)"
LINKS_FILE = "dfutissue_in_fuseg.csv"
DUPLICATES_FILE = "fuseg_duplicates.csv"
LINK_COLUMNS = ("dfutissue_split", "dfutissue_id", "fuseg_split", "fuseg_id", "x", "y", "w", "h")
FUSEG_SIZE = 512  # the link boxes are in 512-px FUSeg coordinates
WOUND_LABELS = ("fuseg", "tissue_union")
MAP = taxonomy_map("dfutissue")
CLASSES = dataset_classes(MAP)  # ("granulation", "slough", "callus")
WOUND_SOURCE_VALUES = (1, 2)  # fibrin, granulation (callus is periwound)


@dataclass(frozen=True)
class Crop:
    """One labelled DFUTissue crop and, when linked, its FUSeg source."""

    folder: str  # TrainVal or Test
    id: str
    image: Path
    annotation: Path
    fuseg: tuple[str, str] | None = None  # (FUSeg split, id)
    box: tuple[float, float, float, float] | None = None  # x, y, w, h at 512 px
    group: str = ""  # leakage group


def import_dfutissue(
    root: str | Path,
    out_dir: str | Path,
    *,
    fuseg_root: str | Path | None = None,
    links: str | Path | None = None,
    wound_label: str = "fuseg",
    validation_count: int = 16,
    seed: int = 0,
) -> pd.DataFrame:
    """Import DFUTissue's labelled crops (both tasks) into the canonical format.

    ``fuseg_root``: the FUSeg folder (wound labels and duplicate groups); ``links``: the
    folder holding ``dfutissue_in_fuseg.csv`` (and optionally ``fuseg_duplicates.csv``,
    used for leakage groups when ``fuseg_root`` is not given). Both are needed for
    ``wound_label="fuseg"``. Returns the metadata (also written to ``out_dir``).
    """
    _check_wound_label(wound_label, fuseg_root, links)
    pairs = find_pairs(fuseg_root) if fuseg_root is not None else None
    groups = _groups(fuseg_root, links)
    crops = assign_splits(find_crops(root, links, groups), validation_count, seed)
    with output_dir(out_dir) as out:
        rows = write_crops(crops, out, pairs, wound_label)
        return finish(out, CLASSES, rows)


def import_dfutissue_fuseg(
    dfutissue_root: str | Path,
    fuseg_root: str | Path,
    links: str | Path,
    out_dir: str | Path,
    *,
    wound_label: str = "fuseg",
    validation_count: int = 16,
    seed: int = 0,
    fuseg_limit: int | None = None,
) -> pd.DataFrame:
    """DFUTissue crops (both tasks, their split) plus the other FUSeg images (wound only,
    train), without any photograph of a DFUTissue validation/test crop in training.

    See the module docstring for what is excluded and why. ``fuseg_limit`` keeps a seeded
    random subset of that many leak-free FUSeg images (CPU-sized runs); ``None`` keeps all.
    Returns the metadata.
    """
    _check_wound_label(wound_label, fuseg_root, links)
    pairs = find_pairs(fuseg_root)
    groups = duplicate_groups(fuseg_root)
    crops = assign_splits(find_crops(dfutissue_root, links, groups), validation_count, seed)
    held_out = sorted({c.group for split, c in crops if split != "train"})
    fuseg = fuseg_rows(select(pairs, groups, exclude=held_out), groups, split="train")
    if fuseg_limit is not None and fuseg_limit < len(fuseg):
        keep = np.random.default_rng(seed).permutation(len(fuseg))[:fuseg_limit]
        fuseg = [fuseg[i] for i in sorted(keep)]
    with output_dir(out_dir) as out:
        rows = write_crops(crops, out, pairs, wound_label)
        write_fuseg(pairs, fuseg, out)
        return finish(out, CLASSES, rows + fuseg)


def find_crops(
    root: str | Path, links: str | Path | None = None, groups: pd.DataFrame | None = None
) -> list[Crop]:
    """The labelled crops of a DFUTissue folder, linked to their FUSeg source if ``links``."""
    root = require_dir(Path(root), LAYOUT)
    labeled = require_dir(root / "Labeled", LAYOUT)
    crops: dict[str, Crop] = {}
    for folder in FOLDERS:
        annotations = require_dir(labeled / "Annotations" / folder, LAYOUT)
        for image in list_files(labeled / "Images" / folder, LAYOUT):
            if image.stem in crops:
                raise DatasetError(
                    image, f"has the same id as {crops[image.stem].image}; ids must be unique"
                )
            annotation = require_file(annotations / image.name, image)
            crops[image.stem] = Crop(
                folder, image.stem, image, annotation, group=f"dfutissue:{image.stem}"
            )
        for annotation in list_files(annotations, LAYOUT):
            if annotation.stem not in crops or crops[annotation.stem].folder != folder:
                raise DatasetError(
                    annotation,
                    f"has no image Labeled/Images/{folder}/{annotation.name}; add "
                    "the image or remove the annotation",
                )
    ordered = [crops[i] for i in sorted(crops)]
    return ordered if links is None else _link(ordered, Path(links), groups)


def assign_splits(crops: list[Crop], validation_count: int, seed: int) -> list[tuple[str, Crop]]:
    """``(split, crop)`` pairs: Test -> test; ``validation_count`` TrainVal crops, taken by
    whole leakage groups in a seeded random order, -> validation; the rest -> train."""
    trainval = [c for c in crops if c.folder == "TrainVal"]
    test_groups = {c.group for c in crops if c.folder == "Test"}
    for crop in trainval:
        if crop.group in test_groups:
            raise DatasetError(
                crop.image,
                f"shares leakage group {crop.group} with a Test crop; remove it "
                "(or move it to Test) so the test set stays unseen",
            )
    if not 0 <= validation_count < len(trainval):
        raise ValueError(
            f"validation_count={validation_count} must be between 0 and {len(trainval) - 1} "
            f"(there are {len(trainval)} TrainVal crops)"
        )
    by_group: dict[str, list[Crop]] = {}
    for crop in trainval:
        by_group.setdefault(crop.group, []).append(crop)
    order = sorted(by_group, key=lambda g: min(c.id for c in by_group[g]))  # by crop id
    chosen: set[str] = set()
    taken = 0
    for index in np.random.default_rng(seed).permutation(len(order)):
        size = len(by_group[order[index]])
        if taken + size <= validation_count:
            chosen.add(order[index])
            taken += size
    if taken != validation_count:
        raise ValueError(
            f"cannot take exactly {validation_count} validation crops in whole leakage "
            f"groups (got {taken}); choose another validation_count or seed"
        )

    def split(crop: Crop) -> str:
        if crop.folder == "Test":
            return "test"
        return "validation" if crop.group in chosen else "train"

    return [(split(c), c) for c in crops]


def write_crops(
    crops: list[tuple[str, Crop]],
    out: Path,
    fuseg_pairs: dict[tuple[str, str], tuple[Path, Path]] | None,
    wound_label: str,
) -> list[dict]:
    """Write every crop (image, wound mask, tissue mask); their metadata rows."""
    duplicates = DuplicateCheck()
    rows = []
    for split, crop in crops:
        image = read_rgb(crop.image)
        duplicates.add(crop.image, image)
        source = read_index(
            crop.annotation,
            "use Labeled/Annotations (class indices), not the colour Labeled/Palette images",
        )
        check_same_size(crop.image, image, crop.annotation, source)
        try:
            tissue = remap(source, MAP, CLASSES)
        except ValueError as error:
            raise DatasetError(
                crop.annotation,
                f"{error}: DFUTissue annotations hold 0 background, "
                "1 fibrin, 2 granulation, 3 callus; fix or remove this annotation",
            ) from error
        union = np.isin(source, WOUND_SOURCE_VALUES).astype(np.uint8)
        fuseg = None
        if fuseg_pairs is not None and crop.fuseg is not None:
            fuseg = fuseg_wound(crop, fuseg_pairs, image.shape[:2])
        wound = fuseg if wound_label == "fuseg" else union
        sample_id = f"dfutissue_{crop.id}"
        write_sample(out, sample_id, image, wound, tissue)
        rows.append(
            {
                "sample_id": sample_id,
                "patient_id": crop.group,
                "split": split,
                "dataset": "dfutissue",
                "dfutissue_split": crop.folder,
                "dfutissue_id": crop.id,
                "fuseg_split": crop.fuseg[0] if crop.fuseg else "",
                "fuseg_id": crop.fuseg[1] if crop.fuseg else "",
                "wound_label": wound_label,
                "wound_agreement_dice": np.nan if fuseg is None else round(dice(fuseg, union), 4),
            }
        )
    return rows


def fuseg_wound(
    crop: Crop,
    fuseg_pairs: dict[tuple[str, str], tuple[Path, Path]],
    size: tuple[int, int],
) -> np.ndarray:
    """FUSeg's wound label (0/1) of the crop's source, cut to its box, at ``size`` (H, W)."""
    if crop.fuseg not in fuseg_pairs:
        raise DatasetError(
            crop.image,
            f"its FUSeg source {crop.fuseg[0]}/{crop.fuseg[1]} is not in the FUSeg "
            "folder; point fuseg_root at the complete FUSeg train + validation release",
        )
    label_path = fuseg_pairs[crop.fuseg][1]
    label = Image.fromarray(read_binary(label_path))
    sx, sy = label.width / FUSEG_SIZE, label.height / FUSEG_SIZE
    x, y, w, h = crop.box
    box = (x * sx, y * sy, (x + w) * sx, (y + h) * sy)
    if box[0] < 0 or box[1] < 0 or box[2] > label.width + 1e-6 or box[3] > label.height + 1e-6:
        raise DatasetError(label_path, f"crop box of DFUTissue {crop.id} lies outside the label")
    cut = label.resize((size[1], size[0]), Image.Resampling.NEAREST, box=box)
    return np.array(cut, dtype=np.uint8)


def _check_wound_label(wound_label: str, fuseg_root, links) -> None:
    if wound_label not in WOUND_LABELS:
        raise ValueError(f"wound_label={wound_label!r}: choose one of {WOUND_LABELS}")
    if wound_label == "fuseg" and (fuseg_root is None or links is None):
        raise ValueError(
            "wound_label='fuseg' takes each crop's wound mask from its FUSeg source image: "
            "set fuseg_root (the FUSeg folder with {train,validation}/{images,labels}) and "
            f"links (the folder holding {LINKS_FILE}), or use wound_label='tissue_union'"
        )


def _groups(fuseg_root, links) -> pd.DataFrame | None:
    """FUSeg duplicate groups: hashed from ``fuseg_root``, else read from ``links``."""
    if fuseg_root is not None:
        return duplicate_groups(fuseg_root)
    if links is not None and (Path(links) / DUPLICATES_FILE).is_file():
        path = Path(links) / DUPLICATES_FILE
        frame = pd.read_csv(path, dtype={"split": str, "id": str})
        if not {"group", "split", "id"} <= set(frame.columns):
            raise DatasetError(path, "needs columns group, split, id")
        return frame
    return None


def _link(crops: list[Crop], links: Path, groups: pd.DataFrame | None) -> list[Crop]:
    """Attach each crop's FUSeg source, box and leakage group from ``links``."""
    path = require_dir(links, f"a folder holding {LINKS_FILE}") / LINKS_FILE
    if not path.is_file():
        raise DatasetError(path, f"missing; the links folder must hold {LINKS_FILE}")
    table = pd.read_csv(path, dtype=str)
    missing = [c for c in LINK_COLUMNS if c not in table.columns]
    if missing:
        raise DatasetError(path, f"lacks column(s) {missing}; expected {list(LINK_COLUMNS)}")
    table = table.set_index("dfutissue_id")
    groups = groups if groups is not None else pd.DataFrame(columns=["group", "split", "id"])
    linked = []
    for crop in crops:
        if crop.id not in table.index or isinstance(table.loc[crop.id], pd.DataFrame):
            raise DatasetError(path, f"needs exactly one row for DFUTissue crop {crop.id}")
        row = table.loc[crop.id]
        if row["dfutissue_split"] != crop.folder:
            raise DatasetError(
                path,
                f"places crop {crop.id} in {row['dfutissue_split']} but the image is in "
                f"{crop.folder}; use the links measured for this DFUTissue release",
            )
        try:
            box = tuple(float(row[c]) for c in "xywh")
        except ValueError as error:
            raise DatasetError(path, f"crop {crop.id}: box x, y, w, h must be numbers") from error
        source = (row["fuseg_split"], row["fuseg_id"])
        group = leakage_group(*source, groups)
        linked.append(Crop(crop.folder, crop.id, crop.image, crop.annotation, source, box, group))
    return linked
