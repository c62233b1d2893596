"""The compendium's canonical on-disk dataset format, its writer and its validator.

Every data source (the synthetic cohort, and importers of public or clinical data) writes
this format; every later stage reads only this format. Like nnU-Net's raw-data format, it is
part of the public interface, and the validator names the offending file and what to do.

    <root>/
      legend.json                   {"tissue_classes": ["granulation", "slough", ...]}
      metadata.csv                  one row per sample (columns below)
      images/<sample_id>.png        RGB, 8 bit
      wound_masks/<sample_id>.png   single channel, 0 = not wound, 1 = wound,
                                    255 = ignore (not annotated)
      tissue_masks/<sample_id>.png  single channel, 0 = no wound tissue, i = legend class i
                                    (1-based), 255 = ignore (not annotated)

A sample whose mask is 255 everywhere has no label for that task (partial labels: e.g. a
wound-only image); it contributes no loss to that task.

``metadata.csv`` columns: ``sample_id`` and ``patient_id`` (required, non-empty; the unit
that must never be in two splits: a patient, or a source photograph for crops),
``visit_day`` (integer days since the first visit, optional), ``pixel_spacing_mm``
(optional, millimetres per pixel), ``split`` (optional, ``train``/``validation``/``test``:
a predefined split, e.g. a dataset's official test set, used instead of a random
patient-level split); any further columns (e.g. the synthetic cohort's ground truth) are
kept as they are.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

IMAGES = "images"
WOUND_MASKS = "wound_masks"
TISSUE_MASKS = "tissue_masks"
METADATA = "metadata.csv"
LEGEND = "legend.json"
IGNORE_INDEX = 255
REQUIRED_COLUMNS = ("sample_id", "patient_id")
TASK_MASKS = {"wound": WOUND_MASKS, "tissue": TISSUE_MASKS}


class DatasetError(ValueError):
    """A dataset does not follow the canonical format; the message names the file."""

    def __init__(self, path: str | Path, problem: str):
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


@dataclass(frozen=True)
class Legend:
    """Tissue classes of a dataset, in mask-index order (index 0 is 'no wound tissue')."""

    tissue_classes: tuple[str, ...]

    @property
    def n_tissue_labels(self) -> int:
        """Number of output channels of a tissue head: background + each class."""
        return len(self.tissue_classes) + 1

    def to_json(self) -> dict:
        return {"tissue_classes": list(self.tissue_classes)}


def read_legend(root: str | Path) -> Legend:
    path = Path(root) / LEGEND
    if not path.is_file():
        raise DatasetError(path, f'missing; write {{"tissue_classes": [...]}} into {LEGEND}')
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise DatasetError(path, f"is not valid JSON ({error})") from error
    classes = raw.get("tissue_classes") if isinstance(raw, dict) else None
    if not isinstance(classes, list) or not classes:
        raise DatasetError(
            path,
            'needs a non-empty list of class names: {"tissue_classes": ["granulation", ...]}',
        )
    if not all(isinstance(c, str) and c.strip() for c in classes):
        raise DatasetError(path, f"tissue_classes must all be non-empty names, got {classes}")
    if len(classes) >= IGNORE_INDEX:  # mask values 1..n must stay clear of the ignore value
        raise DatasetError(path, f"at most {IGNORE_INDEX - 1} tissue classes, got {len(classes)}")
    if len(set(classes)) != len(classes):
        raise DatasetError(path, f"tissue class names repeat: {classes}")
    return Legend(tuple(classes))


def read_metadata(root: str | Path) -> pd.DataFrame:
    path = Path(root) / METADATA
    if not path.is_file():
        raise DatasetError(path, f"missing; one row per sample with columns {REQUIRED_COLUMNS}")
    try:
        frame = pd.read_csv(path, dtype={"sample_id": str, "patient_id": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise DatasetError(path, f"cannot be parsed as CSV ({error})") from error
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise DatasetError(
            path,
            f"lacks required column(s) {missing} (has {list(frame.columns)}); "
            "add them: one row per sample",
        )
    if frame.empty:
        raise DatasetError(path, "has no rows: the dataset is empty")
    for column in REQUIRED_COLUMNS:
        blank = frame[column].isna() | (frame[column].astype(str).str.strip() == "")
        if blank.any():
            row = int(np.flatnonzero(blank.to_numpy())[0]) + 2  # header is line 1
            raise DatasetError(path, f"line {row} has no {column}")
    names = frame["sample_id"].astype(str)
    unsafe = names[names.str.contains(r"[/\\]") | names.isin([".", ".."])]
    if len(unsafe):
        raise DatasetError(
            path,
            f"sample_id {unsafe.iloc[0]!r} is not a plain file name; "
            "sample ids name files in images/ and the mask folders: no / or \\",
        )
    duplicated = frame["sample_id"][frame["sample_id"].duplicated()]
    if len(duplicated):
        raise DatasetError(path, f"sample_id {duplicated.iloc[0]!r} appears more than once")
    if "visit_day" in frame.columns and frame["visit_day"].notna().any():
        if not pd.api.types.is_numeric_dtype(frame["visit_day"]):
            raise DatasetError(
                path, "visit_day must be a number of days since the first visit on every row"
            )
    if "split" in frame.columns:
        unknown = sorted(set(frame["split"].dropna()) - {"train", "validation", "test"})
        if unknown or frame["split"].isna().any():
            raise DatasetError(
                path,
                f"split must be train, validation or test on every row; found {unknown or 'blank'}",
            )
        crossing = frame.groupby("patient_id")["split"].nunique()
        if (crossing > 1).any():
            raise DatasetError(
                path,
                f"patient_id {crossing[crossing > 1].index[0]!r} is in "
                "more than one split (leakage)",
            )
    if "pixel_spacing_mm" in frame.columns:
        spacing = pd.to_numeric(frame["pixel_spacing_mm"], errors="coerce")
        given = frame["pixel_spacing_mm"].notna()
        if (spacing <= 0).any() or (given & spacing.isna()).any():
            raise DatasetError(
                path, "pixel_spacing_mm must be a positive number (mm per pixel) or left blank"
            )
    return frame


def _open(path: Path) -> Image.Image:
    if not path.is_file():
        others = sorted(p.name for p in path.parent.glob(f"{path.stem}.*") if p != path)
        hint = f"; found {others}: convert it to PNG" if others else ""
        raise DatasetError(
            path, f"missing: every sample needs an image, a wound mask and a tissue mask{hint}"
        )
    try:
        image = Image.open(path)
        image.load()
    except (
        UnidentifiedImageError,
        OSError,
        SyntaxError,
        ValueError,
        zlib.error,
        Image.DecompressionBombError,
    ) as error:
        raise DatasetError(path, f"unreadable or truncated image ({error})") from error
    return image


def read_image(path: str | Path) -> np.ndarray:
    """An RGB photograph as uint8 (H, W, 3)."""
    image = _open(Path(path))
    if image.mode not in ("RGB", "RGBA", "L", "P"):
        raise DatasetError(path, f"image mode {image.mode} is not 8-bit RGB")
    return np.array(image.convert("RGB"), dtype=np.uint8)


def read_index_mask(path: str | Path) -> np.ndarray:
    """A single-channel class-index mask as uint8 (H, W)."""
    image = _open(Path(path))
    if image.mode == "P":
        return np.array(image, dtype=np.uint8)  # palette index = class index
    if image.mode != "L":
        raise DatasetError(
            path, f"mask has mode {image.mode}; save a single-channel (mode L) class-index PNG"
        )
    return np.array(image, dtype=np.uint8)


def write_sample(
    root: str | Path,
    sample_id: str,
    image: np.ndarray,
    wound_mask: np.ndarray,
    tissue_mask: np.ndarray,
) -> None:
    """Write one sample's image and masks (PNG, lossless) into ``root``."""
    root = Path(root)
    for folder in (IMAGES, WOUND_MASKS, TISSUE_MASKS):
        (root / folder).mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8), mode="RGB").save(
        root / IMAGES / f"{sample_id}.png"
    )
    Image.fromarray(np.ascontiguousarray(wound_mask, dtype=np.uint8), mode="L").save(
        root / WOUND_MASKS / f"{sample_id}.png"
    )
    Image.fromarray(np.ascontiguousarray(tissue_mask, dtype=np.uint8), mode="L").save(
        root / TISSUE_MASKS / f"{sample_id}.png"
    )


def write_legend(root: str | Path, legend: Legend) -> None:
    (Path(root) / LEGEND).write_text(
        json.dumps(legend.to_json(), indent=2) + "\n", encoding="utf-8"
    )


def write_metadata(root: str | Path, metadata: pd.DataFrame) -> None:
    metadata.to_csv(Path(root) / METADATA, index=False)


def load_sample(root: str | Path, sample_id: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image, wound_mask, tissue_mask) of one sample, unvalidated (validate once, up front)."""
    root = Path(root)
    return (
        read_image(root / IMAGES / f"{sample_id}.png"),
        read_index_mask(root / WOUND_MASKS / f"{sample_id}.png"),
        read_index_mask(root / TISSUE_MASKS / f"{sample_id}.png"),
    )


def validate_sample(root: str | Path, sample_id: str, legend: Legend) -> tuple[int, int]:
    """Check one sample's three files; return its (height, width)."""
    root = Path(root)
    image, wound, tissue = load_sample(root, sample_id)
    size = image.shape[:2]
    for folder, mask in ((WOUND_MASKS, wound), (TISSUE_MASKS, tissue)):
        if mask.shape != size:
            raise DatasetError(
                root / folder / f"{sample_id}.png",
                f"mask is {mask.shape[1]}x{mask.shape[0]} px but its image is "
                f"{size[1]}x{size[0]} px; masks must match their image pixel for pixel",
            )
    bad = np.setdiff1d(np.unique(wound), [0, 1, IGNORE_INDEX])
    if bad.size:
        raise DatasetError(
            root / WOUND_MASKS / f"{sample_id}.png",
            f"values {bad.tolist()} outside the wound legend (0 = not wound, 1 = wound, "
            f"{IGNORE_INDEX} = ignore)",
        )
    allowed = [*range(legend.n_tissue_labels), IGNORE_INDEX]
    bad = np.setdiff1d(np.unique(tissue), allowed)
    if bad.size:
        raise DatasetError(
            root / TISSUE_MASKS / f"{sample_id}.png",
            f"values {bad.tolist()} outside the legend: 0 = none, 1..{len(legend.tissue_classes)} "
            f"= {list(legend.tissue_classes)}, {IGNORE_INDEX} = ignore",
        )
    return size


def mask_labels(wound: np.ndarray, tissue: np.ndarray) -> dict[str, bool]:
    """Per task, whether a sample is labelled for it (a pixel not 255) and whether it holds
    a pixel of one of the task's classes (what a test image needs to be scored)."""
    out = {}
    for task, mask in (("wound", wound), ("tissue", tissue)):
        out[f"{task}_labelled"] = bool((mask != IGNORE_INDEX).any())
        out[f"{task}_present"] = bool(((mask > 0) & (mask != IGNORE_INDEX)).any())
    return out


def label_summary(root: str | Path, sample_ids: list[str] | pd.Series) -> pd.DataFrame:
    """:func:`mask_labels` of each sample: ``sample_id``, ``<task>_labelled``,
    ``<task>_present`` (for :func:`wing.data.split.check_split`)."""
    root = Path(root)
    rows = []
    for sample_id in sample_ids:
        wound = read_index_mask(root / WOUND_MASKS / f"{sample_id}.png")
        tissue = read_index_mask(root / TISSUE_MASKS / f"{sample_id}.png")
        rows.append({"sample_id": str(sample_id), **mask_labels(wound, tissue)})
    return pd.DataFrame(rows)


def validate_dataset(root: str | Path) -> pd.DataFrame:
    """Validate a canonical dataset folder completely; return its metadata.

    Raises :class:`DatasetError` naming the first offending file and the problem. Whether
    a split (predefined or random) can be trained and scored is
    :func:`wing.data.split.check_split`'s question: an importer may write a partial official
    split (FUSeg: no test set) that its data source replaces.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(root, "dataset folder does not exist")
    legend = read_legend(root)
    metadata = read_metadata(root)
    for sample_id in metadata["sample_id"]:
        validate_sample(root, sample_id, legend)
    listed = set(metadata["sample_id"])
    for folder in (IMAGES, WOUND_MASKS, TISSUE_MASKS):
        for file in sorted((root / folder).glob("*.png")):
            if file.stem not in listed:
                raise DatasetError(file, f"is not listed in {METADATA}; add a row or remove it")
    return metadata
