"""Label Studio polygon exports of LUTSeg: tidy polygon records and their rasterisation.

LUTSeg (Sanchez K., Hinojosa C., et al., "LUTSeg: A Longitudinal Multi-Expert Dataset for
Ulcer Tissue Segmentation", ISIC Workshop at MICCAI 2026; CC BY 4.0) ships, next to its
masks, the five annotators' Label Studio JSON exports (``LUTSeg/annotations/raw/``): a list
of tasks, each with ``data.image`` (``Patient_N/PNT_K.jpg``), one annotation per annotator
(``completed_by``) and ``polygonlabels`` results whose ``value.points`` are in percent of
``original_width`` / ``original_height``. A ``wound_outline`` polygon outlines a wound (a
visit may have several); the other labels are tissues (``epitelization``, ``fibrin``,
``granulation``, ``necrotic``, ``other``).

The rasteriser reproduces the release's masks (see ``LUTSeg/pipeline`` in carlosh93/TiSage);
each rule is this compendium's reading of that pipeline, checked against the 13 released
example masks (``tests/test_label_studio.py``):

- Vertices: a point at ``p`` percent lies at pixel index ``rint(p / 100 * (W - 1))``, so
  0 % and 100 % are the centres of the first and last pixel; pixel ``(i, j)`` is the unit
  square centred on ``(i, j)``. A polygon sets the pixels whose centres lie inside it or on
  its edges: PIL ``ImageDraw.polygon`` fills it and a one-pixel ``ImageDraw.line`` traces
  its edges, as OpenCV's ``fillPoly`` (the release's) does; skimage is not installed.
- Overlap: tissue polygons are drawn largest first (area of the rounded polygon), so a small
  island drawn inside a larger region stays on top whatever the export order; equal areas
  keep the export order.
- Wound: the union of the ``wound_outline`` polygons. Unlabelled pixels inside the wound get
  the class of the nearest tissue pixel (exact Euclidean distance; ties go to the lower
  LUTSeg class id), and tissue drawn outside the wound is cleared.
- Classes: LUTSeg's labels enter the compendium taxonomy through
  ``wing.data.taxonomy.taxonomy_map("lutseg")`` (fibrin is slough, necrotic is necrosis);
  an unknown label is an error naming the export, where the release silently drops it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw
from scipy import spatial

from wing.data.format import DatasetError
from wing.data.taxonomy import dataset_classes, taxonomy_map

WOUND_LABEL = "wound_outline"
WOUND = "wound"
"""``region`` of a wound-outline polygon (tissue polygons carry their taxonomy class)."""

# Label Studio label (lower case) -> LUTSeg class id; the aliases the release accepts.
SOURCE_IDS: dict[str, int] = {
    "epitelization": 1,
    "epithelization": 1,
    "epithelial": 1,
    "epithelial tissue": 1,
    "slough": 2,
    "fibrin": 2,
    "granulation": 3,
    "granulation tissue": 3,
    "necrotic": 4,
    "necrotic tissue": 4,
    "other": 5,
}
MAP = taxonomy_map("lutseg")
CLASSES = dataset_classes(MAP)  # ("granulation", "slough", "necrosis", "epithelium", "other")
TISSUE_INDEX = {MAP[i]: CLASSES.index(MAP[i]) + 1 for i in sorted(set(SOURCE_IDS.values()))}
"""Taxonomy class -> index in the tissue mask (legend :data:`CLASSES`, 0 background)."""
LARGEST_FIRST = "largest_first"
EXPORT_ORDER = "export_order"
"""Overlap rules of :func:`rasterise`: draw tissue largest first (the release's), or as
exported (a later polygon on top)."""
SOURCE_ID = {MAP[i]: i for i in sorted(set(SOURCE_IDS.values()))}
"""Taxonomy class -> LUTSeg class id (the tie-break order of the hole filling)."""

IMAGE_NAME = re.compile(r"P(\d+)_?T_?(\d+)\.\w+")  # P10T_3.jpg, P1_T2.jpeg
PATIENT_FOLDER = re.compile(r"Patient_(\d+)")
COLUMNS = (
    "export",
    "annotator",
    "task_id",
    "annotation_id",
    "image",
    "patient_id",
    "visit",
    "order",
    "label",
    "region",
    "width",
    "height",
    "points",
)


def read_export(path: str | Path) -> pd.DataFrame:
    """One row per polygon of a Label Studio JSON export.

    Columns :data:`COLUMNS`: ``annotator`` ``user_<completed_by>`` (the release's pseudonym),
    ``image`` ``Patient_N/PNT_K.jpg``, ``patient_id`` ``lutseg:N``, ``visit`` K, ``order``
    the polygon's position in its annotation, ``label`` as exported, ``region``
    :data:`WOUND` or the taxonomy class, ``width``/``height`` the original image size and
    ``points`` an ``(n, 2)`` float array of ``(x, y)`` in pixels (``p / 100 * (size - 1)``).
    Cancelled annotations and results that are not ``polygonlabels`` are skipped.
    """
    path = Path(path)
    try:
        tasks = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DatasetError(path, "not found; expected a Label Studio JSON export") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DatasetError(path, f"is not JSON ({error}); export the project as JSON") from None
    if not isinstance(tasks, list):
        raise DatasetError(path, "is not a Label Studio JSON export (a list of tasks)")
    rows = []
    for task in tasks:
        image, patient, visit = _image(path, task)
        for annotation in task.get("annotations") or []:
            if annotation.get("was_cancelled"):
                continue
            where = f"task {task.get('id')} ({image}), annotation {annotation.get('id')}"
            order = 0
            for result in annotation.get("result") or []:
                if result.get("type") != "polygonlabels":
                    continue
                label, region, width, height, points = _polygon(path, where, result)
                rows.append(
                    {
                        "export": path.name,
                        "annotator": f"user_{annotation.get('completed_by')}",
                        "task_id": task.get("id"),
                        "annotation_id": annotation.get("id"),
                        "image": image,
                        "patient_id": f"lutseg:{patient}",
                        "visit": visit,
                        "order": order,
                        "label": label,
                        "region": region,
                        "width": width,
                        "height": height,
                        "points": points,
                    }
                )
                order += 1
    return pd.DataFrame(rows, columns=list(COLUMNS))


def read_exports(folder: str | Path) -> pd.DataFrame:
    """:func:`read_export` of every ``*.json`` in ``folder`` (sorted by name), concatenated."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(
            folder,
            "not found; expected the folder of LUTSeg's Label Studio exports "
            "(LUTSeg/annotations/raw)",
        )
    exports = sorted(folder.glob("*.json"))
    if not exports:
        raise DatasetError(folder, "holds no *.json Label Studio exports")
    records = pd.concat([read_export(p) for p in exports], ignore_index=True)
    _check_sizes(folder, records)
    return records


def _image(path: Path, task: dict) -> tuple[str, int, int]:
    """``(Patient_N/PNT_K.jpg, N, K)`` of a task, from ``data.image`` and ``data.patient_id``."""
    data = task.get("data") or {}
    value = str(data.get("image", ""))
    parts = value.split("?")[0].split("/")
    name = parts[-1]
    match = IMAGE_NAME.fullmatch(name)
    if not match:
        raise DatasetError(
            path, f"task {task.get('id')}: image {value!r} is not named PNT_K (patient N, visit K)"
        )
    patient, visit = int(match.group(1)), int(match.group(2))
    folder = data.get("patient_id") or (parts[-2] if len(parts) > 1 else f"Patient_{patient}")
    folder_match = PATIENT_FOLDER.fullmatch(str(folder))
    if not folder_match or int(folder_match.group(1)) != patient:
        raise DatasetError(
            path,
            f"task {task.get('id')}: image {value!r} names patient {patient} but its "
            f"patient is {folder!r}",
        )
    return f"Patient_{patient}/{name}", patient, visit


def _polygon(path: Path, where: str, result: dict):
    """``(label, region, width, height, points in px)`` of one polygon result, checked."""
    value = result.get("value") or {}
    labels = value.get("polygonlabels") or []
    if len(labels) != 1:
        raise DatasetError(path, f"{where}: a polygon needs exactly one label, got {labels}")
    label = str(labels[0])
    key = label.strip().lower()
    if key == WOUND_LABEL:
        region = WOUND
    elif key in SOURCE_IDS:
        region = MAP[SOURCE_IDS[key]]
    else:
        known = [WOUND_LABEL, *sorted(SOURCE_IDS)]
        raise DatasetError(path, f"{where}: unknown label {label!r}; LUTSeg labels are {known}")
    width = result.get("original_width", value.get("original_width"))
    height = result.get("original_height", value.get("original_height"))
    if not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in (width, height)):
        raise DatasetError(
            path,
            f"{where}: polygon {label!r} lacks a positive original_width/original_height "
            f"(got {width}, {height}); the points are in percent of them",
        )
    points = value.get("points")
    try:
        percent = np.asarray(points, dtype=float)
    except (TypeError, ValueError):
        percent = np.empty((0,))
    if percent.ndim != 2 or percent.shape[1] != 2 or not np.isfinite(percent).all():
        raise DatasetError(
            path, f"{where}: polygon {label!r} points are not a list of [x, y] percentages"
        )
    if len(percent) < 3:
        raise DatasetError(path, f"{where}: polygon {label!r} has {len(percent)} points, needs 3")
    scale = np.array([width - 1, height - 1], dtype=float) / 100.0
    return label, region, width, height, percent * scale


def _check_sizes(folder: Path, records: pd.DataFrame) -> None:
    """Every polygon of one image must share its original size."""
    sizes = records.groupby("image")[["width", "height"]].nunique()
    bad = sizes[(sizes > 1).any(axis=1)]
    if len(bad):
        raise DatasetError(
            folder, f"images {bad.index.tolist()} have polygons with different original sizes"
        )


def shoelace_area(vertices: np.ndarray) -> float:
    """Area enclosed by a polygon's vertices (absolute shoelace formula)."""
    x, y = vertices[:, 0], vertices[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def rasterise(
    polygons: pd.DataFrame, size: tuple[int, int] | None = None, overlap: str = LARGEST_FIRST
) -> tuple[np.ndarray, np.ndarray]:
    """Wound mask (0/1) and tissue class-index mask of one image by one annotator.

    ``polygons``: the rows of :func:`read_export` for one ``(image, annotator)``. ``size``
    ``(width, height)`` of the target image (default: the original size; the percent
    points are rescaled to it). Tissue index ``i`` is the ``i``-th class of :data:`CLASSES`,
    0 background; hole filling and clipping follow the module's rules, and ``overlap`` is
    :data:`LARGEST_FIRST` (the release's rule) or :data:`EXPORT_ORDER` (later on top).
    """
    width, height = _size(polygons, size)
    wound, tissue, (x0, y0) = rasterise_window(polygons, size, overlap)
    wound_full = np.zeros((height, width), np.uint8)
    tissue_full = np.zeros((height, width), np.uint8)
    wound_full[y0 : y0 + wound.shape[0], x0 : x0 + wound.shape[1]] = wound
    tissue_full[y0 : y0 + tissue.shape[0], x0 : x0 + tissue.shape[1]] = tissue
    return wound_full, tissue_full


def rasterise_window(
    polygons: pd.DataFrame, size: tuple[int, int] | None = None, overlap: str = LARGEST_FIRST
) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """:func:`rasterise` inside the polygons' bounding box: ``(wound, tissue, (x0, y0))``.

    The masks are zero outside the box, so pixel counts equal the full masks' (and the
    nearest-tissue filling is exact: every tissue pixel lies in the box). Cheaper for
    measuring large photographs.
    """
    if polygons.empty:
        raise ValueError("no polygons to rasterise")
    if overlap not in (LARGEST_FIRST, EXPORT_ORDER):
        raise ValueError(f"overlap must be {LARGEST_FIRST!r} or {EXPORT_ORDER!r}, got {overlap!r}")
    keys = polygons[["image", "annotator"]].drop_duplicates()
    if len(keys) != 1:
        raise ValueError(f"rasterise one image by one annotator at a time, got {len(keys)}")
    width, height = _size(polygons, size)
    scale = np.array(
        [
            (width - 1) / max(int(polygons["width"].iloc[0]) - 1, 1),
            (height - 1) / max(int(polygons["height"].iloc[0]) - 1, 1),
        ]
    )
    polygons = polygons.sort_values("order", kind="stable")
    vertices = [np.rint(p * scale).astype(np.int64) for p in polygons["points"]]
    stacked = np.concatenate(vertices)
    x0, y0 = np.clip(stacked.min(axis=0), 0, [width - 1, height - 1])
    x1, y1 = np.clip(stacked.max(axis=0), 0, [width - 1, height - 1])
    shape = (int(x1 - x0 + 1), int(y1 - y0 + 1))
    offset = np.array([x0, y0])
    regions = polygons["region"].to_numpy()

    wound_image = Image.new("L", shape, 0)
    draw = ImageDraw.Draw(wound_image)
    for v, region in zip(vertices, regions, strict=True):
        if region == WOUND:
            _fill(draw, v - offset, 1)
    tissue_items = [
        (shoelace_area(v), TISSUE_INDEX[region], v)
        for v, region in zip(vertices, regions, strict=True)
        if region != WOUND
    ]
    tissue_image = Image.new("L", shape, 0)
    draw = ImageDraw.Draw(tissue_image)
    if overlap == LARGEST_FIRST:  # smaller polygons end on top; sorted() keeps ties in order
        tissue_items = sorted(tissue_items, key=lambda item: item[0], reverse=True)
    for _, index, v in tissue_items:
        _fill(draw, v - offset, index)
    wound = np.asarray(wound_image, dtype=np.uint8).copy()
    tissue = np.asarray(tissue_image, dtype=np.uint8).copy()
    if wound.any():
        tissue = fill_wound(tissue, wound)
        tissue[wound == 0] = 0
    return wound, tissue, (int(x0), int(y0))


def _fill(draw: ImageDraw.ImageDraw, vertices: np.ndarray, value: int) -> None:
    """Fill a polygon and its edges: PIL's fill leaves out some boundary pixels that the
    release's OpenCV ``fillPoly`` sets, and its one-pixel line sets them back."""
    xy = [tuple(p) for p in vertices.tolist()]
    draw.polygon(xy, fill=value)
    draw.line([*xy, xy[0]], fill=value, width=1)


def fill_wound(tissue: np.ndarray, wound: np.ndarray) -> np.ndarray:
    """Unlabelled pixels (0) inside the wound take the class of the nearest tissue pixel.

    Exact Euclidean distance to each present class; ties go to the lower LUTSeg class id
    (the release's order). A wound without any tissue stays unlabelled. The nearest pixel of
    a class always lies on its edge (a pixel with a 4-neighbour outside the class), so only
    edges are searched, with a k-d tree: the same result as a distance transform, faster.
    """
    holes = (wound > 0) & (tissue == 0)
    present = [c for c in sorted(SOURCE_ID, key=SOURCE_ID.get) if (tissue == TISSUE_INDEX[c]).any()]
    if not holes.any() or not present:
        return tissue
    targets = np.argwhere(holes)
    distances = np.stack(
        [spatial.cKDTree(_edge(tissue == TISSUE_INDEX[c])).query(targets)[0] for c in present]
    )
    out = tissue.copy()
    nearest = np.array([TISSUE_INDEX[c] for c in present], np.uint8)[distances.argmin(axis=0)]
    out[targets[:, 0], targets[:, 1]] = nearest
    return out


def _edge(region: np.ndarray) -> np.ndarray:
    """``(row, column)`` of the region's pixels that have a 4-neighbour outside it."""
    padded = np.pad(region, 1, constant_values=True)
    interior = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:] & region
    return np.argwhere(region & ~interior)


def _size(polygons: pd.DataFrame, size: tuple[int, int] | None) -> tuple[int, int]:
    if size is None:
        return int(polygons["width"].iloc[0]), int(polygons["height"].iloc[0])
    width, height = (int(s) for s in size)
    if width < 1 or height < 1:
        raise ValueError(f"size must be (width, height) > 0, got {size}")
    return width, height
