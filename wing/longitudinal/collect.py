"""What the longitudinal stage reads: per-visit measures of the held-out patients from every
trained run, and LUTSeg's real visit sequences beside the synthetic cohort's dynamics.

- :func:`collect_measures`: the test split's visits only (a patient of the training or
  validation split is never analysed here; :func:`require_held_out` checks it), measured from
  the reference masks, from the generator's truth where the metadata has it, and from each
  run's predictions under the primary checkpoint rule (at each image's native size).
- :func:`lutseg_visit_measures`: LUTSeg's per-visit consensus (polygons, median over
  annotators) in the measures layout, time = visit number (LUTSeg has no dates).
- :func:`composition_dynamics`: per tissue, the spread of per-visit shares and of their
  visit-to-visit changes in a cohort, so the simulated dynamics can be read beside LUTSeg's.
- :func:`photograph_errors`: on LUTSeg's 13 released photographs, each method's absolute
  error of wound fraction and tissue shares against the released masks, beside the spread
  between LUTSeg's five clinicians ("within / outside human variability").
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from wing.config import Config
from wing.data.dataset import WoundDataset
from wing.data.format import read_legend, read_metadata
from wing.evaluation.evaluate import native_references, predict_matrix, split_rows
from wing.longitudinal.measures import (
    REFERENCE,
    fraction_columns,
    measure_table,
    truth_measures,
)
from wing.paths import RUNS, SPLIT

HUMAN = "within human variability"
BEYOND = "outside human variability"
DYNAMICS_COLUMNS = [
    "cohort",
    "tissue",
    "patients",
    "visits",
    "share_median",
    "share_p10",
    "share_p90",
    "change_median_abs",
    "change_p90_abs",
]


def require_held_out(measures: pd.DataFrame, split: pd.DataFrame) -> None:
    """Stop if a patient of the measures is in the train or validation split."""
    seen = set(split.loc[split["split"] != "test", "patient_id"].astype(str))
    leaked = sorted(set(measures["patient_id"].astype(str)) & seen)
    if leaked:
        raise ValueError(
            f"patients {leaked} are in the training or validation split; the longitudinal "
            "analysis uses held-out (test) patients only"
        )


def _predictions(
    config: Config, root: Path, ids: list[str], sizes, samples, classes, runs: Path
) -> list[pd.DataFrame]:
    dataset = WoundDataset(root, ids, config.data.image_size)
    frames = []
    for labels, predicted in predict_matrix(config, dataset, sizes, runs):
        table = measure_table(
            predicted["wound"], predicted["tissue"], samples, classes, labels["method"]
        )
        frames.append(
            table.assign(
                backbone=labels["backbone"], seed=labels["seed"], checkpoint=labels["checkpoint"]
            )
        )
    return frames


def collect_measures(config: Config, runs: Path = RUNS, split_path: Path = SPLIT) -> pd.DataFrame:
    """Per-visit measures of every test image: ``reference``, ``truth`` (synthetic cohort)
    and every run of the train matrix (columns of
    :func:`wing.longitudinal.measures.measure_table` plus ``backbone, seed, checkpoint``)."""
    root = Path(config.data.root)
    test = split_rows(split_path, "test")
    ids = list(test["sample_id"])
    metadata = read_metadata(root)
    samples = test[["sample_id"]].merge(metadata, on="sample_id", how="left")
    classes = read_legend(root).tissue_classes
    wounds, tissues = native_references(root, ids)
    frames = [measure_table(wounds, tissues, samples, classes, REFERENCE)]
    if "true_wound_area_px" in metadata.columns:
        frames.append(truth_measures(samples, classes))
    sizes = [mask.shape for mask in wounds]
    frames += _predictions(config, root, ids, sizes, samples, classes, runs)
    measures = pd.concat(frames, ignore_index=True)
    require_held_out(measures, pd.read_csv(split_path, dtype=str))
    return measures


def lutseg_visit_measures(visits: pd.DataFrame, tissue_classes: Sequence[str]) -> pd.DataFrame:
    """LUTSeg's visit consensus (:func:`wing.longitudinal.lutseg.visit_consensus`) as reference
    measures: ``fraction_<class>`` = ``share_<class>``, wound area = the fraction of the
    photograph (``wound_fraction``; px are not comparable across LUTSeg's visits), no days."""
    out = pd.DataFrame(
        {
            "sample_id": visits["image"].astype(str),
            "patient_id": visits["patient_id"].astype(str),
            "visit": visits["visit"].astype(int),
            "visit_day": np.nan,
            "source": REFERENCE,
            "wound_fraction": visits["wound_fraction"].astype(float),
        }
    )
    for name in tissue_classes:
        column = f"share_{name}"
        out[f"fraction_{name}"] = visits[column].astype(float) if column in visits else np.nan
    return out


def composition_dynamics(
    measures: pd.DataFrame, tissue_classes: Sequence[str], cohort: str
) -> pd.DataFrame:
    """Per tissue: median and 10th-90th percentiles of the per-visit share, and the median
    and 90th percentile of the absolute visit-to-visit change (consecutive visits of a
    patient). Columns :data:`DYNAMICS_COLUMNS`."""
    time = "visit" if "visit" in measures else "visit_day"
    ordered = measures.sort_values(["patient_id", time])
    rows = []
    for name, column in zip(tissue_classes, fraction_columns(tissue_classes), strict=True):
        if column not in ordered:
            continue
        share = ordered[column].astype(float)
        change = ordered.assign(share=share).groupby("patient_id")["share"].diff().abs().dropna()
        finite = share.dropna()
        rows.append(
            {
                "cohort": cohort,
                "tissue": name,
                "patients": int(ordered["patient_id"].nunique()),
                "visits": int(finite.size),
                "share_median": float(finite.median()) if finite.size else np.nan,
                "share_p10": float(finite.quantile(0.1)) if finite.size else np.nan,
                "share_p90": float(finite.quantile(0.9)) if finite.size else np.nan,
                "change_median_abs": float(change.median()) if change.size else np.nan,
                "change_p90_abs": float(change.quantile(0.9)) if change.size else np.nan,
            }
        )
    return pd.DataFrame(rows, columns=DYNAMICS_COLUMNS)


def photograph_measures(
    config: Config, root: Path, runs: Path = RUNS
) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """Measures of an external dataset in the canonical format (``root``): its masks
    (``reference``) and every run's predictions, with ``wound_fraction`` (wound px / image px)
    and the shares of the tissue classes the models and the dataset share (matched by name,
    :func:`wing.evaluation.external.match_classes`), renormalised to sum to 1 over them.
    Returns (measures, shared classes)."""
    from wing.data.format import load_sample
    from wing.evaluation.external import match_classes

    metadata = read_metadata(root)
    ids = list(metadata["sample_id"])
    model_classes = read_legend(config.data.root).tissue_classes
    shared, _, reference_lookup = match_classes(model_classes, read_legend(root).tissue_classes)
    masks = [load_sample(root, sample_id)[1:] for sample_id in ids]
    wounds = [m[0] for m in masks]
    tissues = [reference_lookup[m[1]] for m in masks]
    sizes = [w.shape for w in wounds]
    frames = [measure_table(wounds, tissues, metadata, shared, REFERENCE)]
    frames += _predictions(config, root, ids, sizes, metadata, model_classes, runs)
    measures = pd.concat(frames, ignore_index=True)
    pixels = dict(zip(ids, [h * w for h, w in sizes], strict=True))
    measures["wound_fraction"] = measures["wound_area_px"] / measures["sample_id"].map(pixels)
    columns = fraction_columns(shared)
    total = measures[columns].sum(axis=1, min_count=1)
    measures[columns] = measures[columns].div(total.where(total > 0), axis=0)
    return measures, shared


def photograph_errors(
    measures: pd.DataFrame, shared: Sequence[str], spread: pd.DataFrame
) -> pd.DataFrame:
    """Per method and measure (``wound_fraction`` and each shared tissue's share): the median
    over photographs of |method - reference| (seeds averaged per photograph), beside the
    clinicians' median pairwise absolute difference on LUTSeg's gold visits (``spread``:
    :func:`wing.longitudinal.lutseg.inter_annotator_agreement`). ``verdict``: within human
    variability when the model's median error is at most the clinicians' spread."""
    columns = ["wound_fraction", *fraction_columns(shared)]
    reference = measures[measures["source"] == REFERENCE].groupby("sample_id")[columns].mean()
    human = spread.set_index("measure")["median_abs_difference"]
    rows = []
    for method, block in measures[measures["source"] != REFERENCE].groupby("source", sort=False):
        predicted = block.groupby("sample_id")[columns].mean()
        for column in columns:
            error = (predicted[column] - reference[column]).abs().dropna()
            clinicians = float(human.get(column.replace("fraction_", "share_"), np.nan))
            median = float(error.median()) if error.size else np.nan
            if not (np.isfinite(median) and np.isfinite(clinicians)):
                verdict = "not assessed"
            else:
                verdict = HUMAN if median <= clinicians else BEYOND
            rows.append(
                {
                    "method": method,
                    "measure": column,
                    "photographs": int(error.size),
                    "median_abs_error": median,
                    "clinicians_median_abs_difference": clinicians,
                    "verdict": verdict,
                }
            )
    return pd.DataFrame(rows)


def missing_design(metadata: pd.DataFrame, split: pd.DataFrame) -> str:
    """Why a dataset cannot be analysed longitudinally ("" when it can): its held-out
    patients need visits (``visit`` or ``visit_day``) and at least two photographs each."""
    if "visit" not in metadata and "visit_day" not in metadata:
        return "the dataset has no visit or visit_day column (no repeated visits)"
    test = split.loc[split["split"] == "test", "patient_id"].astype(str)
    visits = test.value_counts()
    if int((visits >= 2).sum()) < 3:
        return (
            f"fewer than 3 held-out patients have two or more visits ({int((visits >= 2).sum())})"
        )
    return ""


LUTSEG_PARTS = ("visits", "agreement", "wound_variation", "trends", "dynamics", "photograph_errors")


def lutseg_analysis(
    config: Config, measures: pd.DataFrame, tissue_classes: Sequence[str], runs: Path = RUNS
) -> dict[str, pd.DataFrame]:
    """LUTSeg's real visits beside this run: tables :data:`LUTSEG_PARTS` and ``status`` (one row
    per part: assessed, or not assessed with the missing folder named).

    From ``data.raw.lutseg_annotations`` (Label Studio exports): the per-visit consensus, the
    clinicians' spread on the gold visits, tissue-share trends over visit number (the mixed
    model of :func:`wing.longitudinal.healing.tissue_trends`) and the per-visit composition
    dynamics beside the synthetic truth's (:func:`composition_dynamics`). From
    ``data.raw.lutseg`` (the 13 released photographs): each method's error beside the
    clinicians' spread (:func:`photograph_errors`; external data, never trained on)."""
    import tempfile

    from wing.evaluation.external import import_external
    from wing.longitudinal.healing import tissue_trends
    from wing.longitudinal.lutseg import CLASSES, lutseg_reference
    from wing.longitudinal.measures import TRUTH

    tables = {name: pd.DataFrame() for name in LUTSEG_PARTS}
    status = []
    annotations = Path(config.data.raw.lutseg_annotations)
    if annotations.is_dir():
        reference = lutseg_reference(annotations)
        visits = lutseg_visit_measures(reference.visits, CLASSES)
        tables["visits"] = reference.visits
        tables["agreement"] = reference.agreement
        tables["wound_variation"] = reference.wound_variation
        tables["trends"] = tissue_trends(visits)
        dynamics = [composition_dynamics(visits, CLASSES, "LUTSeg (clinicians' polygons)")]
        if len(measures) and TRUTH in set(measures["source"]):
            truth = measures[measures["source"] == TRUTH]
            dynamics.insert(0, composition_dynamics(truth, tissue_classes, "synthetic (truth)"))
        tables["dynamics"] = pd.concat(dynamics, ignore_index=True)
        status.append({"part": "annotations", "status": "assessed", "reason": str(annotations)})
    else:
        status.append(
            {"part": "annotations", "status": "not assessed", "reason": f"{annotations}: not found"}
        )
    photographs = Path(config.data.raw.lutseg)
    if not annotations.is_dir():
        status.append(
            {"part": "photographs", "status": "not assessed", "reason": "needs the annotations"}
        )
    elif config.data.source == "lutseg":
        status.append(
            {"part": "photographs", "status": "not assessed", "reason": "LUTSeg is trained on"}
        )
    elif not photographs.is_dir():
        status.append(
            {"part": "photographs", "status": "not assessed", "reason": f"{photographs}: not found"}
        )
    else:
        with tempfile.TemporaryDirectory(prefix="wing-lutseg-") as tmp:
            root = Path(tmp) / "dataset"
            import_external(config, "lutseg", root)
            photo_measures, shared = photograph_measures(config, root, runs)
        tables["photograph_errors"] = photograph_errors(photo_measures, shared, tables["agreement"])
        status.append({"part": "photographs", "status": "assessed", "reason": str(photographs)})
    return {"status": pd.DataFrame(status), **tables}
