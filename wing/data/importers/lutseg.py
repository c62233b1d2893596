"""Importer of LUTSeg (longitudinal leprosy-ulcer tissue segmentation): patients and visits.

Reads the release layout unchanged (repository carlosh93/TiSage, ``LUTSeg/examples/``
here; the full release is the Hugging Face dataset ksanchez84/LUTSeg, same layout; cite
Sanchez K., Hinojosa C., et al., "LUTSeg: A Longitudinal Multi-Expert Dataset for Ulcer
Tissue Segmentation", ISIC Workshop at MICCAI 2026; CC BY 4.0)::

    <root>/Images/Patient_N/PNT_K.jpg        photograph of patient N at visit K
    <root>/Masks/Patient_N/PNT_K.png         class index: 0 background, 1 epithelial,
                                             2 slough, 3 granulation, 4 necrotic,
                                             5 other, 255 ignore
    <root>/Wound_Masks/Patient_N/PNT_K.png   wound outline, 0 / 255

``Masks_RGB/`` (colour renderings) is not read.

Decisions:

- Tissue mask: remapped onto the compendium taxonomy (``wing.data.taxonomy``): epithelial
  -> epithelium, slough -> slough, granulation -> granulation, necrotic -> necrosis,
  other -> other, 255 stays ignore; legend ``(granulation, slough, necrosis, epithelium,
  other)``. Any other value is an error naming the file.
- Wound mask: ``Wound_Masks`` 255 -> 1, 0 -> 0. Every image needs both masks (and every
  mask its image), at the image's size.
- ``patient_id`` = ``lutseg:N`` from the name ``PNT_K`` (which must agree with its
  ``Patient_N`` folder); ``visit`` = K. LUTSeg has visit numbers but no dates, so
  ``visit_day`` is left empty; there is no pixel spacing either.
- No ``split`` column: the pipeline makes a patient-level split. The release's own
  ``train.txt``/``val.txt`` (if present) are recorded as ``lutseg_split`` for reference.
- Exact duplicate images (identical pixels) are an error naming both files.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from wing.data.format import DatasetError, write_sample
from wing.data.importers.common import (
    IMAGE_SUFFIXES,
    DuplicateCheck,
    check_same_size,
    finish,
    list_files,
    output_dir,
    read_binary,
    read_index,
    read_rgb,
    require_dir,
    require_file,
)
from wing.data.taxonomy import dataset_classes, remap, taxonomy_map

LAYOUT = (
    "<root>/{Images,Masks,Wound_Masks}/Patient_N/PNT_K.{jpg,png} (the LUTSeg release, e.g. "
    "LUTSeg/examples)"
)
MAP = taxonomy_map("lutseg")
CLASSES = dataset_classes(MAP)  # ("granulation", "slough", "necrosis", "epithelium", "other")
PATIENT_FOLDER = re.compile(r"Patient_(\d+)")
IMAGE_NAME = re.compile(r"P(\d+)T_(\d+)")
MASK_FOLDERS = ("Masks", "Wound_Masks")


def import_lutseg(root: str | Path, out_dir: str | Path) -> pd.DataFrame:
    """Import a LUTSeg folder (both tasks, patients and visits) into the canonical format.

    Returns the metadata (also written to ``out_dir``).
    """
    samples = find_samples(root)
    release_split = _release_split(Path(root))
    duplicates = DuplicateCheck()
    with output_dir(out_dir) as out:
        rows = [_write(sample, out, duplicates) for sample in samples]
        if release_split:
            for row in rows:
                row["lutseg_split"] = release_split.get(row["lutseg_image"], "")
        return finish(out, CLASSES, rows)


def find_samples(root: str | Path) -> list[dict]:
    """One dict per image: paths of the image and its two masks, patient and visit."""
    root = require_dir(Path(root), LAYOUT)
    for folder in ("Images", *MASK_FOLDERS):
        require_dir(root / folder, LAYOUT)
    patients = sorted(p for p in (root / "Images").iterdir() if p.is_dir())
    if not patients:
        raise DatasetError(root / "Images", f"holds no Patient_N folders; expected {LAYOUT}")
    samples = []
    for folder in patients:
        match = PATIENT_FOLDER.fullmatch(folder.name)
        if not match:
            raise DatasetError(folder, f"is not named Patient_N; expected {LAYOUT}")
        samples += [_sample(root, image, match.group(1)) for image in _images(folder)]
    _check_orphans(root, samples)
    return samples


def _images(folder: Path) -> list[Path]:
    images = list_files(folder, LAYOUT, IMAGE_SUFFIXES)
    stems: dict[str, Path] = {}
    for image in images:
        if image.stem in stems:
            raise DatasetError(image, f"and {stems[image.stem].name} share a name; keep one")
        stems[image.stem] = image
    return images


def _sample(root: Path, image: Path, patient: str) -> dict:
    match = IMAGE_NAME.fullmatch(image.stem)
    if not match:
        raise DatasetError(image, "is not named PNT_K (patient N, visit K), e.g. P10T_3.jpg")
    if int(match.group(1)) != int(patient):
        raise DatasetError(
            image, f"names patient {match.group(1)} but lies in Patient_{patient}; move it"
        )
    relative = image.relative_to(root / "Images")
    return {
        "image": image,
        "mask": require_file(root / "Masks" / relative.with_suffix(".png"), image),
        "wound": require_file(root / "Wound_Masks" / relative.with_suffix(".png"), image),
        "patient": int(patient),
        "visit": int(match.group(2)),
        "key": relative.as_posix(),
    }


def _check_orphans(root: Path, samples: list[dict]) -> None:
    expected = {s[k] for s in samples for k in ("mask", "wound")}
    for folder in MASK_FOLDERS:
        for mask in sorted((root / folder).rglob("*.png")):
            if mask not in expected:
                raise DatasetError(
                    mask,
                    "has no image under Images/ with the same patient folder and name; "
                    "add the image or remove the mask",
                )


def _write(sample: dict, out: Path, duplicates: DuplicateCheck) -> dict:
    """Check and write one sample; its metadata row."""
    image = read_rgb(sample["image"])
    duplicates.add(sample["image"], image)
    source = read_index(sample["mask"], "save Masks/ as class indices (Masks_RGB is for viewing)")
    check_same_size(sample["image"], image, sample["mask"], source)
    wound = read_binary(sample["wound"])
    check_same_size(sample["image"], image, sample["wound"], wound)
    try:
        tissue = remap(source, MAP, CLASSES)
    except ValueError as error:
        raise DatasetError(
            sample["mask"],
            f"{error}: LUTSeg masks hold 0 background, 1 epithelial, "
            "2 slough, 3 granulation, 4 necrotic, 5 other, 255 ignore; fix this mask",
        ) from error
    sample_id = f"lutseg_{sample['image'].stem}"
    write_sample(out, sample_id, image, wound, tissue)
    return {
        "sample_id": sample_id,
        "patient_id": f"lutseg:{sample['patient']}",
        "visit": sample["visit"],
        "visit_day": np.nan,
        "dataset": "lutseg",
        "lutseg_image": sample["key"],
    }


def _release_split(root: Path) -> dict[str, str]:
    """``{Patient_N/PNT_K.jpg: train|validation}`` from the release's split lists, if any."""
    split = {}
    for name, value in (("train.txt", "train"), ("val.txt", "validation")):
        path = root / name
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    image = line.split()[0].removeprefix("Images/")
                    split[image] = value
    return split
