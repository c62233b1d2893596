"""The manuscript's in-text values: one flat mapping of name -> text, written as one JSON.

The manuscript (``paper/``) types no number: it writes ``{{ score_wound_gradnorm }}`` and
Sphinx (``myst_substitutions``) puts in the text that these functions computed from the
pipeline's tables. Every key exists for every recipe of ``params.yaml`` and every claim, run
or not: a value the run did not produce reads ``not assessed``, never a blank or ``nan``.

Each function takes the tables a stage wrote (pandas frames, read by
:func:`wing.manuscript.build.read_results`) and returns part of the mapping; the names say
where a value comes from (``score_*``: ``compare/summary.csv``; ``diff_*``, ``p_*``:
``compare/paired_tests.csv``; ``verdict_*``: ``compare/claims.csv``; ...).
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from wing.config import Config
from wing.manuscript.format import count, interval, listing, missing, number, p_value, signed
from wing.manuscript.format import percent as as_percent
from wing.statistics.claims import NOT_ASSESSED
from wing.statistics.paired import CONFIDENCE

PRIMARY_TARGETS = ("wound", "tissue_mean")
CLAIM_IDS = ("1", "2a", "2b", "3", "4", "5", "6", "delta_mtl")
METRIC_NAMES = {"dice": "Dice", "iou": "IoU", "precision": "precision", "recall": "recall"}
TEST_NAMES = {"ttest": "paired t-test", "wilcoxon": "Wilcoxon signed-rank test"}


def _rows(frame: pd.DataFrame, **equal: object) -> pd.DataFrame:
    """The rows of ``frame`` whose columns equal the given values (empty if a column is absent)."""
    if frame.empty or any(column not in frame for column in equal):
        return frame.iloc[0:0]
    mask = pd.Series(True, index=frame.index)
    for column, value in equal.items():
        mask &= frame[column].astype(str) == str(value)
    return frame[mask]


def _first(frame: pd.DataFrame, column: str) -> object:
    return frame[column].iloc[0] if len(frame) and column in frame else None


def setting_values(config: Config) -> dict[str, str]:
    """The run's settings as the text states them (profile, source, methods, budget...)."""
    labels = [config.recipes[m].label for m in config.train.methods]
    return {
        "title": config.report.title,
        "profile": config.profile,
        "source": config.data.source,
        "metric": METRIC_NAMES.get(config.compare.metric, config.compare.metric),
        "reference_label": config.recipes[config.compare.reference].label,
        "test": TEST_NAMES[config.compare.test],
        "significance": f"{config.compare.significance:g}",
        "confidence": as_percent(compare_confidence()),
        "n_boot": count(config.compare.n_boot),
        "n_seeds": str(len(config.train.seeds)),
        "n_methods": str(len(config.train.methods)),
        "n_backbones": str(len(config.train.backbones)),
        "n_runs": str(_training_runs(config)),
        "methods_run": listing(labels),
        "backbones_run": listing(list(config.train.backbones)),
        "primary_backbone": config.train.backbones[0],
        "epochs": str(config.train.epochs),
        "image_size": str(config.data.image_size),
    }


def compare_confidence() -> float:
    """The level of the compare stage's bootstrap intervals (the default it calls with)."""
    return CONFIDENCE


def _training_runs(config: Config) -> int:
    return len(config.train.methods) * len(config.train.backbones) * len(config.train.seeds)


def data_values(metadata: pd.DataFrame, split: pd.DataFrame | None) -> dict[str, str]:
    """The cohort and its split: units (patients, or photograph groups), images, visits."""
    unit = "source-photograph group" if "fuseg_id" in metadata else "patient"
    values = {
        "unit": unit,
        "units": unit + "s",
        "n_units": str(metadata["patient_id"].nunique()),
        "n_images": str(len(metadata)),
        "visits_per_unit": NOT_ASSESSED,
    }
    if "visit" in metadata:
        visits = metadata.groupby("patient_id")["visit"].nunique().median()
        values["visits_per_unit"] = f"{visits:.0f}"
    for name in ("train", "validation", "test"):
        part = split[split["split"] == name] if split is not None else pd.DataFrame()
        values[f"n_{name}_units"] = str(part["patient_id"].nunique()) if len(part) else "0"
        values[f"n_{name}_images"] = str(len(part))
    return values


def score_values(
    summary: pd.DataFrame, methods: Iterable[str], backbone: str, metric: str
) -> dict[str, str]:
    """``score_<target>_<method>`` (patient-level mean) and ``..._ci`` (its bootstrap CI)."""
    values = {}
    for method in methods:
        for target in PRIMARY_TARGETS:
            row = _rows(summary, backbone=backbone, method=method, target=target, metric=metric)
            low, high = _first(row, "ci_low"), _first(row, "ci_high")
            key = f"score_{target}_{method}"
            values[key] = number(_first(row, "mean"))
            ci = NOT_ASSESSED if missing(low) or missing(high) else f"{low:.3f} to {high:.3f}"
            values[key + "_ci"] = ci
    return values


def paired_values(
    paired: pd.DataFrame, methods: Iterable[str], backbone: str, test: str
) -> dict[str, str]:
    """``diff_<target>_<method>`` (reference minus method, patient level), ``..._ci`` and
    ``p_<target>_<method>`` (Holm-corrected p of the test that decides a claim)."""
    values = {}
    for method in methods:
        for target in PRIMARY_TARGETS:
            row = _rows(paired, backbone=backbone, method=method, target=target)
            values[f"diff_{target}_{method}"] = signed(_first(row, "mean_difference"))
            values[f"diff_{target}_{method}_ci"] = interval(
                _first(row, "ci_low"), _first(row, "ci_high")
            )
            values[f"p_{target}_{method}"] = p_value(_first(row, f"{test}_p_holm"))
    return values


def claim_values(claims: pd.DataFrame) -> dict[str, str]:
    """``verdict_<id>`` and ``reason_<id>`` of each headline claim, and how many of the
    assessed ones were supported."""
    headline = claims[claims["headline"].astype(str) == "True"] if len(claims) else claims
    values = {}
    for claim in CLAIM_IDS:
        row = _rows(headline, claim_id=claim)
        values[f"verdict_{claim}"] = str(_first(row, "verdict") or NOT_ASSESSED)
        values[f"reason_{claim}"] = str(_first(row, "reason") or NOT_ASSESSED)
    verdicts = [values[f"verdict_{c}"] for c in CLAIM_IDS]
    assessed = [v for v in verdicts if v != NOT_ASSESSED]
    values["n_claims"] = str(len(CLAIM_IDS))
    values["n_claims_assessed"] = str(len(assessed))
    values["n_claims_supported"] = str(sum(v == "supported" for v in assessed))
    values["n_claims_contradicted"] = str(sum(v == "contradicted" for v in assessed))
    return values


def delta_values(delta: pd.DataFrame, methods: Iterable[str], backbone: str) -> dict[str, str]:
    """``delta_mtl_<method>`` (percent, against STL) and ``..._ci``."""
    values = {}
    for method in methods:
        row = _rows(delta, backbone=backbone, method=method)
        values[f"delta_mtl_{method}"] = signed(_first(row, "delta_mtl"), 2)
        values[f"delta_mtl_{method}_ci"] = interval(
            _first(row, "delta_mtl_ci_low"), _first(row, "delta_mtl_ci_high"), 2
        )
    return values


def parameter_values(
    parameters: pd.DataFrame, methods: Iterable[str], backbone: str, reference: str
) -> dict[str, str]:
    """``parameters_<method>`` (trainable parameters, summed over a method's networks) and
    ``parameter_share``: the reference's count as a percentage of STL's."""
    values = {}
    for method in methods:
        values[f"parameters_{method}"] = count(
            _first(_rows(parameters, backbone=backbone, method=method), "parameters")
        )
    ours = _first(_rows(parameters, backbone=backbone, method=reference), "parameters")
    stl = _first(_rows(parameters, backbone=backbone, method="stl"), "parameters")
    share = None if missing(ours) or missing(stl) else float(ours) / float(stl)
    values["parameter_share"] = as_percent(share)
    return values


def ranking_values(friedman: pd.DataFrame, backbone: str) -> dict[str, str]:
    """``friedman_p_<target>``: the Friedman test across every method, per primary target."""
    return {
        f"friedman_p_{target}": p_value(
            _first(_rows(friedman, backbone=backbone, target=target), "p")
        )
        for target in PRIMARY_TARGETS
    }


def longitudinal_values(
    rates: pd.DataFrame,
    errors: pd.DataFrame,
    agreement: pd.DataFrame,
    par4: pd.DataFrame,
    methods: Iterable[str],
    backbone: str,
) -> dict[str, str]:
    """Healing rates (percent of area per day, from the reference masks and from each
    method's masks), each method's mean per-patient healing-rate error against the truth,
    its ICC of log wound area and its PAR-4 Cohen's kappa against the reference masks."""
    values = {}
    for source in ("reference", *methods):
        row = _rows(rates, backbone=backbone, source=source)
        values[f"healing_rate_{source}"] = number(_scaled(_first(row, "healing_rate")), 2)
        values[f"healing_rate_{source}_ci"] = _unsigned_interval(
            _scaled(_first(row, "ci_low")), _scaled(_first(row, "ci_high")), 2
        )
    for method in methods:
        own = _rows(errors, backbone=backbone, method=method, against="truth")
        if own.empty:
            own = _rows(errors, backbone=backbone, method=method, against="reference")
        mean_error = own["error"].mean() if len(own) else None
        values[f"healing_error_{method}"] = number(_scaled(mean_error), 2)
        icc = _rows(agreement, backbone=backbone, method=method, measure="log_wound_area")
        values[f"area_icc_{method}"] = number(_first(icc, "icc"))
        kappa = _rows(par4, backbone=backbone, method=method, against="reference")
        values[f"par4_kappa_{method}"] = number(_first(kappa, "kappa"), 2)
    values["longitudinal_units"] = str(
        _first(_rows(rates, backbone=backbone, source="reference"), "n_patients") or NOT_ASSESSED
    )
    return values


def _scaled(rate: object) -> float | None:
    """A fraction per day as a percentage per day."""
    return None if missing(rate) else 100 * float(rate)


def _unsigned_interval(low: object, high: object, digits: int) -> str:
    if missing(low) or missing(high):
        return NOT_ASSESSED
    return f"{float(low):.{digits}f} to {float(high):.{digits}f}"


def external_values(
    status: pd.DataFrame, summary: pd.DataFrame, methods: Iterable[str], backbone: str, metric: str
) -> dict[str, str]:
    """External validation on the first dataset of ``evaluate.external``: its status, size
    and each method's patient-level wound score there."""
    row = status.iloc[:1] if len(status) else status
    assessed = _first(row, "status") == "assessed"
    values = {
        "external_dataset": str(_first(row, "dataset") or NOT_ASSESSED),
        "external_status": "assessed" if assessed else str(_first(row, "reason") or NOT_ASSESSED),
        "external_images": count(_first(row, "images")) if assessed else NOT_ASSESSED,
        "external_units": count(_first(row, "patients")) if assessed else NOT_ASSESSED,
    }
    for method in methods:
        scores = _rows(summary, backbone=backbone, method=method, target="wound", metric=metric)
        values[f"external_score_wound_{method}"] = number(_first(scores, "mean"))
    return values


def lutseg_values(status: pd.DataFrame, agreement: pd.DataFrame) -> dict[str, str]:
    """LUTSeg's real visits: whether they were read, how many visits, and the clinicians'
    agreement (ICC) on the wound's share of the photograph."""
    read = _rows(status, part="annotations")
    assessed = _first(read, "status") == "assessed"
    wound = _rows(agreement, measure="wound_fraction")
    return {
        "lutseg_status": "assessed" if assessed else str(_first(read, "reason") or NOT_ASSESSED),
        "lutseg_visits": count(_first(wound, "visits")) if assessed else NOT_ASSESSED,
        "lutseg_wound_icc": number(_first(wound, "icc_agreement")) if assessed else NOT_ASSESSED,
    }


def paper_values(config: Config, results: dict[str, pd.DataFrame]) -> dict[str, str]:
    """Every in-text value of the manuscript, from the run's config and its tables
    (``results``: :func:`wing.manuscript.build.read_results`)."""
    methods = list(config.recipes)
    backbone = config.train.backbones[0]
    metric = config.compare.metric
    values = setting_values(config)
    values.update(data_values(results["metadata"], results["split"]))
    values.update(score_values(results["summary"], methods, backbone, metric))
    values.update(paired_values(results["paired"], methods, backbone, config.compare.test))
    values.update(claim_values(results["claims"]))
    values.update(delta_values(results["delta"], methods, backbone))
    values.update(
        parameter_values(results["parameters"], methods, backbone, config.compare.reference)
    )
    values.update(ranking_values(results["friedman"], backbone))
    values.update(
        longitudinal_values(
            results["healing_rates"],
            results["healing_errors"],
            results["agreement"],
            results["par4_agreement"],
            methods,
            backbone,
        )
    )
    values.update(
        external_values(
            results["external_status"], results["external_summary"], methods, backbone, metric
        )
    )
    values.update(lutseg_values(results["lutseg_status"], results["lutseg_agreement"]))
    return with_reference_aliases(values, config.compare.reference)


def with_reference_aliases(values: dict[str, str], reference: str) -> dict[str, str]:
    """Each per-method value of the reference method also under ``..._reference`` (the text
    speaks of WING-MTL, whichever recipe ``compare.reference`` names)."""
    aliases = {}
    for key, value in values.items():
        for marker in (f"_{reference}_", f"_{reference}"):
            if marker in key and (marker.endswith("_") or key.endswith(marker)):
                aliases[key.replace(marker, marker.replace(reference, "reference"), 1)] = value
    return {**values, **aliases}
