"""One wound-tissue taxonomy for the compendium, and each public dataset's map onto it.

Public wound datasets name and number their tissue classes differently; the importers map
every source label onto one shared vocabulary so that results, figures and the report speak
about the same classes:

- ``granulation``: red, moist, granular wound-bed tissue;
- ``slough``: yellow/white devitalised tissue, *including fibrin* (DFUTissue's "fibrin");
- ``necrosis``: dead tissue, *including eschar* (LUTSeg's "necrotic");
- ``epithelium``: new epithelial tissue at the wound edge (LUTSeg's "epithelial");
- ``callus``: periwound hyperkeratosis. It surrounds the ulcer but is *not* wound bed, so it
  is excluded from :data:`WOUND_BED` and from any wound mask derived from tissue labels;
- ``other``: anything a dataset labels but the classes above do not cover (LUTSeg's
  "other").

A dataset's canonical legend (``legend.json``, see ``wing.data.format``) is the subset of
:data:`TAXONOMY` it labels, in :data:`TAXONOMY` order; canonical tissue-mask index ``i``
is the ``i``-th class of that legend (1-based), 0 is background (no wound tissue) and
:data:`~wing.data.format.IGNORE_INDEX` (255) is "not annotated".

Source legends (from each dataset's documentation, see ``../shared/data/README.md``):
DFUTissue (Dhar et al., arXiv 2406.16012) ``0 background, 1 fibrin, 2 granulation,
3 callus``; LUTSeg (Sanchez, Hinojosa et al., ISIC@MICCAI 2026) ``0 background,
1 epithelial, 2 slough, 3 granulation, 4 necrotic, 5 other, 255 ignore``. FUSeg has no
tissue labels (wound / not wound only).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from wing.data.format import IGNORE_INDEX

TAXONOMY: tuple[str, ...] = ("granulation", "slough", "necrosis", "epithelium", "callus", "other")
"""The compendium's tissue classes, in canonical order."""

WOUND_BED: tuple[str, ...] = ("granulation", "slough", "necrosis", "epithelium")
"""Classes that are part of the wound bed (callus is periwound; "other" is unspecified)."""

IGNORE = "ignore"
"""Map target meaning "not annotated": remapped to ``IGNORE_INDEX``."""

# source value -> (source class name, taxonomy class | None for background | IGNORE)
SourceLegend = Mapping[int, tuple[str, str | None]]

LEGENDS: dict[str, SourceLegend] = {
    "dfutissue": {
        0: ("background", None),
        1: ("fibrin", "slough"),
        2: ("granulation", "granulation"),
        3: ("callus", "callus"),
    },
    "lutseg": {
        0: ("background", None),
        1: ("epithelial", "epithelium"),
        2: ("slough", "slough"),
        3: ("granulation", "granulation"),
        4: ("necrotic", "necrosis"),
        5: ("other", "other"),
        255: ("ignore", IGNORE),
    },
}
"""Each dataset's source legend and where every source value goes in :data:`TAXONOMY`."""


def taxonomy_map(dataset: str) -> dict[int, str | None]:
    """``{source value: taxonomy class, None (background) or IGNORE}`` of a dataset."""
    if dataset not in LEGENDS:
        raise KeyError(f"no legend for dataset {dataset!r}; known: {sorted(LEGENDS)}")
    return {value: target for value, (_, target) in LEGENDS[dataset].items()}


def dataset_classes(mapping: Mapping[int, str | None]) -> tuple[str, ...]:
    """The taxonomy classes a map produces, in :data:`TAXONOMY` order (a dataset's legend)."""
    targets = {t for t in mapping.values() if t is not None and t != IGNORE}
    unknown = sorted(targets - set(TAXONOMY))
    if unknown:
        raise ValueError(f"{unknown} are not taxonomy classes {TAXONOMY}")
    return tuple(c for c in TAXONOMY if c in targets)


def legend_table() -> pd.DataFrame:
    """One row per dataset and source value: how every source label enters the taxonomy.

    Columns: ``dataset, source_value, source_name, taxonomy_class`` (empty for background,
    ``ignore`` for not-annotated) and ``wound_bed`` (whether the class is wound bed).
    """
    rows = [
        {
            "dataset": dataset,
            "source_value": value,
            "source_name": name,
            "taxonomy_class": target or "",
            "wound_bed": target in WOUND_BED,
        }
        for dataset, legend in LEGENDS.items()
        for value, (name, target) in sorted(legend.items())
    ]
    return pd.DataFrame(rows)


def remap(
    mask: np.ndarray, mapping: Mapping[int, str | None], classes: Sequence[str]
) -> np.ndarray:
    """Map a source class-index mask onto canonical indices of the legend ``classes``.

    ``mapping`` sends each source value to a taxonomy class (canonical index = its 1-based
    position in ``classes``), ``None`` (background, 0) or :data:`IGNORE` (255). Raises
    ``ValueError`` listing source values the map does not know, or map targets missing from
    ``classes``.
    """
    mask = np.asarray(mask)
    if mask.dtype.kind not in "ui":
        raise ValueError(f"a class-index mask must be integer, got {mask.dtype}")
    missing = sorted({t for t in mapping.values() if t not in (None, IGNORE)} - set(classes))
    if missing:
        raise ValueError(f"map targets {missing} are not in the legend {list(classes)}")
    known = np.array(sorted(mapping), dtype=np.int64)
    values = np.unique(mask)
    unknown = np.setdiff1d(values, known)
    if unknown.size:
        raise ValueError(f"values {unknown.tolist()} are not in the source legend {known.tolist()}")
    lookup = np.zeros(int(known.max()) + 1, dtype=np.uint8)
    for value, target in mapping.items():
        if target is None:
            lookup[value] = 0
        elif target == IGNORE:
            lookup[value] = IGNORE_INDEX
        else:
            lookup[value] = list(classes).index(target) + 1
    return lookup[mask.astype(np.int64)]
