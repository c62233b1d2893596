"""LUTSeg's per-visit reference: wound area and tissue composition from the annotators' polygons.

LUTSeg (Sanchez K., Hinojosa C., et al., ISIC Workshop at MICCAI 2026) has 141 visits of 39
leprosy-ulcer patients, each outlined by one annotator, and 46 "gold" visits of 9 patients
outlined by all five. Its Label Studio exports are rasterised by
``wing.longitudinal.label_studio`` (the release's rules) and measured here, per visit and
annotator. This compendium's choices:

- ``wound_px``: pixels of the wound mask (union of the wound outlines) at the original size.
- ``wound_fraction``: ``wound_px`` / image pixels. Image size changes between visits for 18
  of 39 patients and there is no pixel spacing, so only the fraction of the photograph is
  comparable across visits (and still depends on how the photograph was framed).
- ``share_<tissue>``: pixels of the tissue inside the wound / labelled tissue pixels inside
  the wound, on the release's masks (holes in the wound take the nearest tissue, tissue
  outside the wound is cleared), so shares sum to 1. This is LUTSeg's own proportion
  (``compute_proportions`` of its inter-rater analysis).
- Consensus of a visit: the median over its annotators of each measure (one annotator: its
  value). Medians of shares need not sum to 1; a single selected annotation (the release's
  vote) is not in the exports, and the median does not favour one clinician.
- Inter-annotator spread, on the gold visits (all five annotators): median over visits and
  annotator pairs of the absolute difference, and the ICC(A,1) (pingouin ``ICC2``: two-way
  random, absolute agreement, single rater): the five clinicians stand for any clinician, a
  systematic offset between them is disagreement, and every other visit has one annotator.
  ICC(C,1) (``ICC3``, consistency), which LUTSeg's figure reports, is given alongside.
  Wound-area spread is the coefficient of variation (standard deviation / mean over the five
  annotators) per gold visit, with the population standard deviation (``ddof=0``): that
  reproduces the median 0.176 of ``data/README.md``; the sample one gives 0.197.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pingouin

from wing.data.format import DatasetError
from wing.longitudinal.label_studio import CLASSES, TISSUE_INDEX, rasterise_window, read_exports

SHARES = tuple(f"share_{c}" for c in CLASSES)
"""Tissue-share columns, in the legend order of ``label_studio.CLASSES``."""
VISIT = ["patient_id", "visit", "image"]
ANNOTATORS = 5
"""LUTSeg's annotators; a gold visit is one outlined by all of them."""


def annotation_measures(records: pd.DataFrame) -> pd.DataFrame:
    """One row per visit and annotator: wound area, its image fraction and tissue shares.

    ``records``: polygons of ``label_studio.read_export(s)``. Columns ``patient_id, visit,
    image, annotator, width, height, wound_px, wound_fraction, tissue_px`` (labelled tissue
    pixels inside the wound) and :data:`SHARES` (NaN when the wound holds no tissue).
    """
    rows = []
    for (patient, visit, image, annotator), polygons in records.groupby(
        [*VISIT, "annotator"], sort=False
    ):
        wound, tissue, _ = rasterise_window(polygons)
        width, height = int(polygons["width"].iloc[0]), int(polygons["height"].iloc[0])
        inside = tissue[wound > 0]
        counts = np.bincount(inside, minlength=max(TISSUE_INDEX.values()) + 1)
        tissue_px = int(counts[1:].sum())
        row = {
            "patient_id": patient,
            "visit": int(visit),
            "image": image,
            "annotator": annotator,
            "width": width,
            "height": height,
            "wound_px": int(wound.sum()),
            "wound_fraction": float(wound.sum()) / (width * height),
            "tissue_px": tissue_px,
        }
        for tissue_class, column in zip(CLASSES, SHARES, strict=True):
            share = counts[TISSUE_INDEX[tissue_class]] / tissue_px if tissue_px else np.nan
            row[column] = float(share)
        rows.append(row)
    return _patient_order(pd.DataFrame(rows)).reset_index(drop=True)


def visit_consensus(measures: pd.DataFrame) -> pd.DataFrame:
    """One row per visit: the median over its annotators of each measure, and their count."""
    columns = ["width", "height", "wound_px", "wound_fraction", *SHARES]
    grouped = measures.groupby(VISIT, sort=False)
    consensus = grouped[columns].median()
    consensus.insert(0, "annotators", grouped["annotator"].nunique())
    return _patient_order(consensus.reset_index()).reset_index(drop=True)


def gold_measures(measures: pd.DataFrame, annotators: int = ANNOTATORS) -> pd.DataFrame:
    """The rows of the gold visits: those measured by ``annotators`` distinct annotators."""
    count = measures.groupby("image")["annotator"].transform("nunique")
    return measures[count == annotators].reset_index(drop=True)


def inter_annotator_agreement(measures: pd.DataFrame) -> pd.DataFrame:
    """Per measure (``wound_fraction`` and :data:`SHARES`), spread between annotators on gold.

    Columns ``measure, visits, pairs, median_abs_difference`` (over visits and annotator
    pairs), ``icc_agreement`` with ``icc_agreement_low/high`` (95 % CI) = ICC(A,1), and
    ``icc_consistency`` = ICC(C,1); NaN where pingouin cannot compute it (a measure that is 0
    for every rating has no between-visit variance).
    """
    gold = gold_measures(measures)
    if gold.empty:
        raise ValueError(f"no visit is measured by all {ANNOTATORS} annotators")
    rows = []
    for measure in ("wound_fraction", *SHARES):
        table = gold.pivot(index="image", columns="annotator", values=measure)
        differences = [
            (table[a] - table[b]).abs() for a, b in itertools.combinations(table.columns, 2)
        ]
        differences = pd.concat(differences).dropna()
        row = {
            "measure": measure,
            "visits": int(table.notna().all(axis=1).sum()),
            "pairs": len(differences),
            "median_abs_difference": float(differences.median()),
        }
        row.update(_icc(gold, measure))
        rows.append(row)
    return pd.DataFrame(rows)


def _icc(gold: pd.DataFrame, measure: str) -> dict[str, float]:
    nan = {k: np.nan for k in ("icc_agreement", "icc_agreement_low", "icc_agreement_high")}
    nan["icc_consistency"] = np.nan
    ratings = gold[["image", "annotator", measure]].dropna()
    complete = ratings.groupby("image")["annotator"].transform("nunique") == ANNOTATORS
    ratings = ratings[complete]
    if ratings.empty or ratings[measure].nunique() < 2:
        return nan
    with np.errstate(divide="ignore", invalid="ignore"):  # perfect agreement: zero error
        icc = pingouin.intraclass_corr(
            data=ratings, targets="image", raters="annotator", ratings=measure
        ).set_index("Type")
    low, high = icc.loc["ICC(A,1)", "CI95"]
    return {
        "icc_agreement": float(icc.loc["ICC(A,1)", "ICC"]),
        "icc_agreement_low": float(low),
        "icc_agreement_high": float(high),
        "icc_consistency": float(icc.loc["ICC(C,1)", "ICC"]),
    }


def wound_area_variation(measures: pd.DataFrame, ddof: int = 0) -> pd.DataFrame:
    """Per gold visit: mean and standard deviation (``ddof``) of ``wound_px`` over the
    annotators, and their coefficient of variation ``cv`` = std / mean."""
    gold = gold_measures(measures)
    grouped = gold.groupby(VISIT, sort=False)["wound_px"]
    table = pd.DataFrame(
        {
            "annotators": grouped.size(),
            "mean_wound_px": grouped.mean(),
            "std_wound_px": grouped.std(ddof=ddof),
        }
    )
    table["cv"] = table["std_wound_px"] / table["mean_wound_px"]
    return _patient_order(table.reset_index()).reset_index(drop=True)


@dataclass(frozen=True)
class LUTSegReference:
    """LUTSeg's polygon-derived reference tables (see the module docstring)."""

    measures: pd.DataFrame
    """One row per visit and annotator (:func:`annotation_measures`)."""
    visits: pd.DataFrame
    """One row per visit, the consensus (:func:`visit_consensus`)."""
    agreement: pd.DataFrame
    """Inter-annotator spread per measure on the gold visits."""
    wound_variation: pd.DataFrame
    """Per gold visit, the coefficient of variation of wound area."""


def lutseg_reference(raw_folder: str | Path) -> LUTSegReference:
    """Read LUTSeg's Label Studio exports (``LUTSeg/annotations/raw``) and measure them."""
    raw_folder = Path(raw_folder)
    if not raw_folder.is_dir():
        raise DatasetError(
            raw_folder,
            "not found; expected LUTSeg's Label Studio exports "
            "(LUTSeg/annotations/raw of the release, see data/README.md)",
        )
    measures = annotation_measures(read_exports(raw_folder))
    return LUTSegReference(
        measures=measures,
        visits=visit_consensus(measures),
        agreement=inter_annotator_agreement(measures),
        wound_variation=wound_area_variation(measures),
    )


def _patient_order(table: pd.DataFrame) -> pd.DataFrame:
    """Rows by patient number, visit (and annotator), not by string order."""
    number = table["patient_id"].str.removeprefix("lutseg:").astype(int)
    keys = ["visit", "annotator"] if "annotator" in table else ["visit"]
    return table.assign(_n=number).sort_values(["_n", *keys]).drop(columns="_n")
