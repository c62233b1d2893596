"""Per-visit measures of a wound: its area and its tissue composition (issue 10).

One photograph gives, from a wound label map (0 = not wound, 1 = wound, 255 = ignore) and a
tissue label map (0 = no wound tissue, i = legend class i, 255 = ignore):

* ``wound_area_px``: the pixels labelled 1 in the wound map. Ignored pixels are not counted;
  a map with no labelled pixel at all (a sample without a wound annotation) has no area (NaN).
* ``wound_area_mm2``: ``wound_area_px * pixel_spacing_mm ** 2`` where the spacing is known,
  else NaN (the compendium never guesses a scale).
* ``tissue_area_px``: the pixels of any tissue class (1..K) in the tissue map.
* ``fraction_<class>``: that class's pixels over ``tissue_area_px``, i.e. each tissue's share
  of the tissue-labelled wound bed. This compendium's choice: the denominator is the tissue
  map's own wound bed, not the wound map's area, so the shares sum to 1 and do not mix the two
  tasks (their outlines differ by annotator convention, see :mod:`wing.data.synthetic`);
  ignored (255) pixels are in neither count. No tissue pixel: every share is NaN.

The same measures come from three kinds of ``source``: ``"reference"`` (the annotated masks),
``"truth"`` (the synthetic generator's metadata, counted from the true layout:
:func:`truth_measures`) and a training method's predicted maps (its name, e.g. ``gradnorm``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from wing.data.format import IGNORE_INDEX

REFERENCE = "reference"
TRUTH = "truth"
MEASURE_KEYS = ["sample_id", "patient_id", "visit", "visit_day", "source"]
AREA_COLUMNS = ["pixel_spacing_mm", "wound_area_px", "wound_area_mm2", "tissue_area_px"]


def fraction_columns(tissue_classes: Sequence[str]) -> list[str]:
    """The share columns of ``tissue_classes``: ``fraction_<class>`` in legend order."""
    return [f"fraction_{name}" for name in tissue_classes]


def measure_columns(tissue_classes: Sequence[str]) -> list[str]:
    """Columns of :func:`measure_table`: keys, areas, then one share per tissue class."""
    return [*MEASURE_KEYS, *AREA_COLUMNS, *fraction_columns(tissue_classes)]


def require_columns(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    """Raise ``ValueError`` naming the ``columns`` that ``frame`` (a ``what``) lacks."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} lacks column(s) {missing}")


def visit_measures(
    wound: np.ndarray,
    tissue: np.ndarray,
    tissue_classes: Sequence[str],
    pixel_spacing_mm: float | None = None,
) -> dict[str, float]:
    """Wound area (px, mm²) and each tissue's share of the wound bed of one photograph.

    ``wound`` and ``tissue`` are label maps of one image (module docstring for the values and
    the conventions). Returns :data:`AREA_COLUMNS` and ``fraction_<class>`` per class.
    """
    wound, tissue = np.asarray(wound), np.asarray(tissue)
    if wound.ndim != 2 or tissue.shape != wound.shape:
        raise ValueError(
            f"wound and tissue maps must be 2-D and of one size, got {wound.shape} and "
            f"{tissue.shape}"
        )
    bad = np.setdiff1d(np.unique(wound), [0, 1, IGNORE_INDEX])
    if bad.size:
        raise ValueError(f"wound map values {bad.tolist()} outside 0, 1, {IGNORE_INDEX}")
    n_classes = len(tissue_classes)
    bad = np.setdiff1d(np.unique(tissue), [*range(n_classes + 1), IGNORE_INDEX])
    if bad.size:
        raise ValueError(
            f"tissue map values {bad.tolist()} outside 0..{n_classes} ({list(tissue_classes)}) "
            f"and {IGNORE_INDEX}"
        )
    labelled = np.any(wound != IGNORE_INDEX)
    area = float(np.count_nonzero(wound == 1)) if labelled else np.nan
    spacing = np.nan if pixel_spacing_mm is None else float(pixel_spacing_mm)
    counts = np.bincount(tissue[tissue != IGNORE_INDEX].ravel(), minlength=n_classes + 1)
    bed = float(counts[1:].sum())
    shares = counts[1:] / bed if bed > 0 else np.full(n_classes, np.nan)
    return {
        "pixel_spacing_mm": spacing,
        "wound_area_px": area,
        "wound_area_mm2": area * spacing**2,
        "tissue_area_px": bed,
        **dict(zip(fraction_columns(tissue_classes), shares.tolist(), strict=True)),
    }


def _visit_keys(samples: pd.DataFrame, source: str) -> pd.DataFrame:
    """``MEASURE_KEYS`` of ``samples``: ``visit`` numbered 1.. per patient in order of
    ``visit_day`` (then of the rows) when the metadata has none; ``visit_day`` NaN if absent."""
    require_columns(samples, ["sample_id", "patient_id"], "sample table")
    keys = samples[["sample_id", "patient_id"]].astype(str).reset_index(drop=True)
    days = samples["visit_day"] if "visit_day" in samples else pd.Series(np.nan, samples.index)
    keys["visit_day"] = pd.to_numeric(days, errors="coerce").to_numpy(dtype=float)
    if "visit" in samples:
        keys["visit"] = pd.to_numeric(samples["visit"], errors="coerce").to_numpy(dtype=float)
    else:
        order = keys.assign(row=np.arange(len(keys))).sort_values(["visit_day", "row"])
        keys["visit"] = order.groupby("patient_id").cumcount().add(1).reindex(keys.index)
        keys["visit"] = keys["visit"].astype(float)
    keys["source"] = source
    return keys[MEASURE_KEYS]


def measure_table(
    wounds: Sequence[np.ndarray],
    tissues: Sequence[np.ndarray],
    samples: pd.DataFrame,
    tissue_classes: Sequence[str],
    source: str,
) -> pd.DataFrame:
    """Tidy per-visit measures of many photographs from one ``source``.

    ``wounds[i]`` and ``tissues[i]`` are the label maps (at native size) of ``samples``' i-th
    row, which has ``sample_id`` and ``patient_id`` and, where the dataset has them, ``visit``,
    ``visit_day`` and ``pixel_spacing_mm`` (the dataset's ``metadata.csv`` columns). Columns
    :func:`measure_columns`; add run labels (``backbone``, ``seed``, ``checkpoint``) with
    ``assign``: :func:`wing.longitudinal.healing.longitudinal_tables` understands them.
    """
    if not (len(wounds) == len(tissues) == len(samples)):
        raise ValueError(
            f"{len(wounds)} wound maps, {len(tissues)} tissue maps and {len(samples)} sample rows"
        )
    keys = _visit_keys(samples, source)
    spacing = (
        pd.to_numeric(samples["pixel_spacing_mm"], errors="coerce").to_numpy(dtype=float)
        if "pixel_spacing_mm" in samples
        else np.full(len(samples), np.nan)
    )
    rows = [
        visit_measures(wound, tissue, tissue_classes, spacing[i])
        for i, (wound, tissue) in enumerate(zip(wounds, tissues, strict=True))
    ]
    values = pd.DataFrame(rows, columns=[*AREA_COLUMNS, *fraction_columns(tissue_classes)])
    return pd.concat([keys, values], axis=1)[measure_columns(tissue_classes)]


def truth_measures(metadata: pd.DataFrame, tissue_classes: Sequence[str]) -> pd.DataFrame:
    """The synthetic cohort's true measures (``source="truth"``) from its ``metadata.csv``.

    Reads ``true_wound_area_px`` and ``fraction_<class>`` (counted by the generator from the
    true layout, so the true wound bed is every tissue pixel and ``tissue_area_px`` equals
    the area); the area in mm² is the pixel count times the spacing squared, as the generator
    computes ``true_wound_area_mm2``. Columns :func:`measure_columns`.
    """
    require_columns(
        metadata,
        ["sample_id", "patient_id", "true_wound_area_px", *fraction_columns(tissue_classes)],
        "metadata (the synthetic cohort's truth)",
    )
    out = _visit_keys(metadata, TRUTH)
    spacing = (
        pd.to_numeric(metadata["pixel_spacing_mm"], errors="coerce")
        if "pixel_spacing_mm" in metadata
        else pd.Series(np.nan, metadata.index)
    )
    area = metadata["true_wound_area_px"].astype(float)
    out["pixel_spacing_mm"] = spacing.to_numpy(dtype=float)
    out["wound_area_px"] = area.to_numpy()
    out["wound_area_mm2"] = (area * spacing**2).to_numpy()
    out["tissue_area_px"] = area.to_numpy()
    for column in fraction_columns(tissue_classes):
        out[column] = metadata[column].astype(float).to_numpy()
    return out[measure_columns(tissue_classes)]


def true_healing_rates(metadata: pd.DataFrame) -> pd.Series:
    """The generator's healing rate per patient (per day; area ∝ exp(-rate * day)).

    A Series indexed by ``patient_id``; empty when the metadata has no
    ``healing_rate_per_day`` (real data). A patient with two different rates is an error.
    """
    if "healing_rate_per_day" not in metadata:
        return pd.Series(dtype=float, name="healing_rate_per_day")
    require_columns(metadata, ["patient_id"], "metadata")
    rates = metadata.assign(patient_id=metadata["patient_id"].astype(str)).groupby("patient_id")[
        "healing_rate_per_day"
    ]
    varying = rates.nunique()
    if (varying > 1).any():
        raise ValueError(
            f"patient {varying[varying > 1].index[0]!r} has more than one healing_rate_per_day"
        )
    return rates.first().astype(float)


def fraction_groups(
    tissue_classes: Sequence[str], groups: Mapping[str, Sequence[str]]
) -> dict[str, list[str]]:
    """Share columns of each named group of tissues (e.g. slough and necrosis, the non-viable
    bed) whose classes are all in the legend; groups naming an absent class are left out."""
    return {
        name: fraction_columns(members)
        for name, members in groups.items()
        if set(members) <= set(tissue_classes)
    }
