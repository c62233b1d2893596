"""Importer of the Foot Ulcer Segmentation Challenge data (FUSeg 2021): wound masks only.

Reads the release layout unchanged (repository uwm-bigdata/wound-segmentation, folder
``data/Foot Ulcer Segmentation Challenge/``)::

    <root>/{train,validation}/images/NNNN.png   RGB photographs (512 px in the release;
                                                any size is accepted, e.g. a 256-px copy)
    <root>/{train,validation}/labels/NNNN.png   wound label, 0 = background, 255 = wound,
                                                RGB with equal channels or single-channel

The challenge's ``test/`` images have no public labels and are not read. Cite: Wang C. et
al., "Fully automatic wound segmentation with deep convolutional neural networks", Sci.
Rep. 10:21897 (2020), and the FUSeg 2021 challenge (AZH Wound and Vascular Center).

Decisions:

- Wound mask: label 255 -> 1, 0 -> 0; any other value (or an RGB label whose channels
  differ) is an error naming the file. Tissue mask: 255 everywhere (FUSeg has no tissue
  labels: the sample contributes no tissue loss). The legend is ``tissue_classes``
  (default: the whole taxonomy), so a FUSeg-only dataset still has a valid legend.
- Leakage groups: FUSeg holds 24 groups of byte-identical photographs (23 pairs and a
  triple; the same photo annotated twice, labels differing slightly), 7 of them across
  FUSeg's train/validation split (measured in ``../shared/data/links/``). They are found
  by hashing decoded pixels (:func:`duplicate_groups`), not read from a list, so the
  512-px release and the 256-px copy give the same groups. ``patient_id`` is the leakage
  group (:func:`leakage_group`): ``fuseg:<split>/<id>`` of the group's first member
  (train before validation, then by id), or of the image itself when it has no duplicate.
- Split: FUSeg's train images -> ``train``, validation -> ``validation``, except that a
  duplicate group with members in both goes entirely to ``train`` (its validation copies
  are the same photograph as a training image, so they cannot measure generalisation);
  no group ever crosses splits. FUSeg has no labelled test set: the import has no
  ``test`` rows.
- Duplicates are grouped, never rejected (they are a known property of the release).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from wing.data.format import IGNORE_INDEX, DatasetError, write_sample
from wing.data.importers.common import (
    check_same_size,
    finish,
    list_files,
    output_dir,
    pixel_hash,
    read_binary,
    read_rgb,
    require_dir,
    require_file,
)
from wing.data.taxonomy import TAXONOMY

SPLITS = ("train", "validation")
LAYOUT = "<root>/{train,validation}/{images,labels}/NNNN.png (the FUSeg 2021 release)"

ImageKey = tuple[str, str]  # (FUSeg split, id), e.g. ("train", "0915")


def find_pairs(root: str | Path) -> dict[ImageKey, tuple[Path, Path]]:
    """``{(split, id): (image, label)}`` of a FUSeg folder; every image needs its label."""
    root = require_dir(Path(root), LAYOUT)
    present = [s for s in SPLITS if (root / s).is_dir()]
    if not present:
        raise DatasetError(root, f"has neither train/ nor validation/; expected {LAYOUT}")
    pairs: dict[ImageKey, tuple[Path, Path]] = {}
    for split in present:
        images = list_files(root / split / "images", LAYOUT)
        labels_dir = require_dir(root / split / "labels", LAYOUT)
        for image in images:
            pairs[(split, image.stem)] = (image, require_file(labels_dir / image.name, image))
        for label in list_files(labels_dir, LAYOUT):
            if (split, label.stem) not in pairs:
                raise DatasetError(
                    label,
                    f"has no image {split}/images/{label.stem}.png; add it or remove the label",
                )
    return pairs


def duplicate_groups(root: str | Path) -> pd.DataFrame:
    """Groups of byte-identical FUSeg images (identical decoded pixels).

    Returns one row per member, ``group, split, id, label_identical``: groups are numbered
    from 1 in the order of their first member (train before validation, then by id);
    ``label_identical`` says whether all members' labels are identical too.
    """
    pairs = find_pairs(root)
    by_hash: dict[str, list[ImageKey]] = {}
    for key in sorted(pairs, key=_order):
        by_hash.setdefault(pixel_hash(read_rgb(pairs[key][0])), []).append(key)
    groups = sorted((m for m in by_hash.values() if len(m) > 1), key=lambda m: _order(m[0]))
    rows = []
    for number, members in enumerate(groups, start=1):
        labels = {pixel_hash(read_binary(pairs[key][1])) for key in members}
        rows += [
            {"group": number, "split": s, "id": i, "label_identical": len(labels) == 1}
            for s, i in members
        ]
    return pd.DataFrame(rows, columns=["group", "split", "id", "label_identical"])


def leakage_group(split: str, id: str, groups: pd.DataFrame) -> str:
    """The leakage group of FUSeg image ``split/id``: ``fuseg:<split>/<id>`` of its group's
    first member (``groups`` from :func:`duplicate_groups`), or of itself if it has none."""
    return _group_keys(groups).get((split, str(id)), _key((split, str(id))))


def import_fuseg(
    root: str | Path,
    out_dir: str | Path,
    *,
    exclude: Iterable[str | ImageKey] = (),
    only: Iterable[str | ImageKey] | None = None,
    tissue_classes: tuple[str, ...] = TAXONOMY,
) -> pd.DataFrame:
    """Import FUSeg (wound masks only) into the canonical format in ``out_dir``.

    ``exclude``: leakage groups (``"fuseg:train/0915"``) or images (``("train", "0915")``
    or ``"train/0915"``) to drop; an image stands for its whole leakage group. ``only``:
    import just these images (e.g. a quick subset); leakage groups and splits are still
    computed on the whole folder. ``tissue_classes``: the legend written (FUSeg has no
    tissue labels; give the classes of the datasets it will be used with). Returns the
    metadata (also written).
    """
    pairs = find_pairs(root)
    groups = duplicate_groups(root)
    rows = fuseg_rows(select(pairs, groups, exclude=exclude, only=only), groups)
    with output_dir(out_dir) as out:
        write_fuseg(pairs, rows, out)
        return finish(out, tissue_classes, rows)


def select(
    pairs: dict[ImageKey, tuple[Path, Path]],
    groups: pd.DataFrame,
    *,
    exclude: Iterable[str | ImageKey] = (),
    only: Iterable[str | ImageKey] | None = None,
) -> list[ImageKey]:
    """The images to import, in order: ``only`` (or all) minus excluded leakage groups."""
    known = _group_keys(groups)
    group_of = {key: known.get(key, _key(key)) for key in pairs}
    chosen = sorted(pairs, key=_order) if only is None else _resolve_images(only, pairs)
    dropped = set()
    for item in exclude:
        if isinstance(item, str) and item.startswith("fuseg:"):
            if item not in set(group_of.values()):
                raise ValueError(f"exclude: {item!r} is not a leakage group of this FUSeg copy")
            dropped.add(item)
        else:
            dropped.add(group_of[_resolve_images([item], pairs)[0]])
    return [key for key in chosen if group_of[key] not in dropped]


def fuseg_rows(
    keys: Iterable[ImageKey], groups: pd.DataFrame, *, split: str | None = None
) -> list[dict]:
    """Metadata rows of the FUSeg images ``keys`` (no file is read).

    ``split`` forces one split for all (e.g. ``train`` in a combined dataset); by default
    FUSeg's own split, with duplicate groups that cross train/validation moved to train.
    """
    known = _group_keys(groups)
    splits = group_splits(groups)
    numbers = {(s, i): g for g, s, i in groups[["group", "split", "id"]].itertuples(index=False)}
    rows = []
    for key in keys:
        group = known.get(key, _key(key))
        rows.append(
            {
                "sample_id": f"fuseg_{key[0]}_{key[1]}",
                "patient_id": group,
                "split": split or splits.get(group, key[0]),
                "dataset": "fuseg",
                "fuseg_split": key[0],
                "fuseg_id": key[1],
                "duplicate_group": numbers.get(key, pd.NA),
            }
        )
    return rows


def write_fuseg(pairs: dict[ImageKey, tuple[Path, Path]], rows: list[dict], out: Path) -> None:
    """Check and write the image and wound mask of every row (tissue mask all 255)."""
    for row in rows:
        image_path, label_path = pairs[(row["fuseg_split"], row["fuseg_id"])]
        image = read_rgb(image_path)
        wound = read_binary(label_path)
        check_same_size(image_path, image, label_path, wound)
        tissue = np.full(wound.shape, IGNORE_INDEX, np.uint8)
        write_sample(out, row["sample_id"], image, wound, tissue)


def group_splits(groups: pd.DataFrame) -> dict[str, str]:
    """``{leakage group: split}`` for duplicate groups: ``train`` if any member is in
    FUSeg's train split (a group crossing train/validation goes wholly to train)."""
    keys = _group_keys(groups)
    out: dict[str, str] = {}
    for (split, _), group in keys.items():
        out[group] = "train" if split == "train" or out.get(group) == "train" else split
    return out


def _resolve_images(items: Iterable[str | ImageKey], pairs) -> list[ImageKey]:
    keys = []
    for item in items:
        key = tuple(item.split("/", 1)) if isinstance(item, str) else tuple(item)
        if len(key) != 2 or (str(key[0]), str(key[1])) not in pairs:
            raise ValueError(
                f"{item!r} is not a FUSeg image of this folder; give (split, id) such as "
                "('train', '0915') or 'train/0915'"
            )
        keys.append((str(key[0]), str(key[1])))
    return keys


def _group_keys(groups: pd.DataFrame) -> dict[ImageKey, str]:
    """``{(split, id): leakage group}`` for every member of a duplicate group."""
    members: dict[int, list[ImageKey]] = {}
    for number, split, id_ in groups[["group", "split", "id"]].itertuples(index=False):
        members.setdefault(int(number), []).append((str(split), str(id_)))
    keys = {}
    for group in members.values():
        first = min(group, key=_order)
        keys |= {member: _key(first) for member in group}
    return keys


def _key(image: ImageKey) -> str:
    return f"fuseg:{image[0]}/{image[1]}"


def _order(image: ImageKey) -> tuple[int, str]:
    return (SPLITS.index(image[0]) if image[0] in SPLITS else len(SPLITS), image[1])
