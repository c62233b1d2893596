"""The manuscript's tables: each a small, formatted frame made from one stage's output.

The manuscript includes them as CSV files (``{csv-table}`` with ``:file:``); nothing in a
table is typed. Numbers are written as text here (:mod:`wing.manuscript.format`), so the
manuscript shows what the text quotes. A table the run could not fill holds one row saying
``not assessed`` (``csv-table`` needs a row, and a reader needs the reason).

``TABLE_SOURCES`` names the stage notebook that wrote each table's input: the manuscript
links every table to it.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from wing.config import Config
from wing.manuscript.format import count, interval, number, p_value, signed
from wing.manuscript.values import PRIMARY_TARGETS, _rows
from wing.report import published_dfutissue, recipe_table
from wing.statistics.claims import NOT_ASSESSED

# table name -> the stage notebook (results/notebooks/<name>.ipynb) that made its input
TABLE_SOURCES = {
    "split": "01_prepare",
    "recipes": "06_compare",
    "scores": "06_compare",
    "paired": "06_compare",
    "tissue_classes": "06_compare",
    "delta_mtl": "06_compare",
    "ranks": "06_compare",
    "hd95": "06_compare",
    "parameters": "06_compare",
    "convergence": "06_compare",
    "claims": "06_compare",
    "claims_detail": "06_compare",
    "backbone_interaction": "06_compare",
    "gradnorm_additions": "06_compare",
    "image_tasks": "03_evaluate",
    "published": "03_evaluate",
    "ours_percent": "03_evaluate",
    "healing_rates": "05_longitudinal",
    "healing_errors": "05_longitudinal",
    "agreement": "05_longitudinal",
    "par4_agreement": "05_longitudinal",
    "lutseg_agreement": "05_longitudinal",
    "lutseg_photographs": "05_longitudinal",
    "external": "04_external",
}
TARGET_NAMES = {"wound": "wound", "tissue_mean": "tissue mean"}


def or_not_assessed(frame: pd.DataFrame, reason: str = "") -> pd.DataFrame:
    """``frame``, or one row saying it was not assessed (and why) when it is empty."""
    if len(frame):
        return frame.reset_index(drop=True)
    note = NOT_ASSESSED + (f": {reason}" if reason else "")
    columns = list(frame.columns) or ["result"]
    return pd.DataFrame([[note] + [""] * (len(columns) - 1)], columns=columns)


def _groups(frame: pd.DataFrame, keys: list[str]):
    """``frame.groupby(keys)`` in the frame's order, or nothing for an empty table."""
    return [] if frame.empty else frame.groupby(keys, sort=False)


def _label(labels: Mapping[str, str], method: str) -> str:
    return labels.get(method, method)


def split_table(split: pd.DataFrame | None, unit: str) -> pd.DataFrame:
    """Units and images per split (no unit in two splits)."""
    if split is None or split.empty:
        return or_not_assessed(pd.DataFrame(columns=["split", unit + "s", "images"]))
    rows = [
        {"split": name, unit + "s": part["patient_id"].nunique(), "images": len(part)}
        for name in ("train", "validation", "test")
        if len(part := split[split["split"] == name])
    ]
    return pd.DataFrame(rows)


def methods_table(config: Config) -> pd.DataFrame:
    """The methods of the train matrix (the report's recipe table)."""
    table = recipe_table(config)
    return table[["label", "method", "networks", "architecture", "balancer", "family", "options"]]


def score_table(summary: pd.DataFrame, labels: Mapping[str, str], metric: str) -> pd.DataFrame:
    """Patient-level mean score with its bootstrap CI, per backbone and method, on the
    primary targets."""
    rows = []
    frame = _rows(summary, metric=metric)
    for (backbone, method), part in _groups(frame, ["backbone", "method"]):
        row = {"backbone": backbone, "method": _label(labels, method)}
        for target in PRIMARY_TARGETS:
            hit = part[part["target"] == target]
            row[TARGET_NAMES[target]] = (
                f"{number(hit['mean'].iloc[0])} ({number(hit['ci_low'].iloc[0])}–"
                f"{number(hit['ci_high'].iloc[0])})"
                if len(hit)
                else NOT_ASSESSED
            )
        row["patients"] = count(part["n_patients"].max())
        rows.append(row)
    return or_not_assessed(pd.DataFrame(rows))


def paired_table(paired: pd.DataFrame, labels: Mapping[str, str]) -> pd.DataFrame:
    """The reference against each method on the primary targets: difference (positive
    favours the reference), its CI, both Holm-corrected p-values (the text names the one
    that decides) and Cohen's d_z."""
    frame = paired[paired["target"].isin(PRIMARY_TARGETS)] if len(paired) else paired
    rows = [
        {
            "backbone": r.backbone,
            "target": TARGET_NAMES[r.target],
            "comparator": _label(labels, r.method),
            "difference": signed(r.mean_difference),
            "CI": interval(r.ci_low, r.ci_high),
            "p (t-test, Holm)": p_value(r.ttest_p_holm),
            "p (Wilcoxon, Holm)": p_value(r.wilcoxon_p_holm),
            "d_z": signed(r.cohens_dz, 2),
        }
        for r in frame.itertuples()
    ]
    return or_not_assessed(pd.DataFrame(rows), "no comparator was run")


def tissue_class_table(
    summary: pd.DataFrame, labels: Mapping[str, str], metric: str
) -> pd.DataFrame:
    """Patient-level mean score of each tissue class, per backbone and method."""
    frame = _rows(summary, metric=metric)
    if frame.empty:
        return or_not_assessed(frame)
    frame = frame[~frame["target"].isin(PRIMARY_TARGETS)]
    wide = frame.pivot_table(
        index=["backbone", "method"], columns="target", values="mean", sort=False
    )
    wide = wide.map(number).reset_index()
    wide["method"] = wide["method"].map(lambda m: _label(labels, m))
    wide.columns.name = None
    return wide


def delta_table(delta: pd.DataFrame, labels: Mapping[str, str]) -> pd.DataFrame:
    """Δ-MTL against STL (percent) with its bootstrap CI, and the gain per primary target."""
    rows = [
        {
            "backbone": r.backbone,
            "method": _label(labels, r.method),
            "Δ-MTL (%)": signed(r.delta_mtl, 2),
            "CI": interval(r.delta_mtl_ci_low, r.delta_mtl_ci_high, 2),
            "wound (%)": signed(r.delta_wound, 2),
            "tissue mean (%)": signed(r.delta_tissue_mean, 2),
        }
        for r in delta.itertuples()
        if r.method != "stl"
    ]
    return or_not_assessed(pd.DataFrame(rows), "no STL run")


def rank_table(
    friedman: pd.DataFrame, ranks: pd.DataFrame, labels: Mapping[str, str]
) -> pd.DataFrame:
    """Average rank of each method over patients (1 = best) per primary target, with the
    Friedman test's p-value on the last row."""
    if ranks.empty:
        return or_not_assessed(ranks, "fewer than two methods")
    wide = ranks.pivot_table(
        index=["backbone", "method"], columns="target", values="average_rank", sort=False
    ).reset_index()
    rows = []
    for r in wide.itertuples(index=False):
        row = {"backbone": r.backbone, "method": _label(labels, r.method)}
        for target in PRIMARY_TARGETS:
            row[TARGET_NAMES[target]] = number(getattr(r, target, None), 2)
        rows.append(row)
    for backbone in wide["backbone"].unique():
        row = {"backbone": backbone, "method": "Friedman p"}
        for target in PRIMARY_TARGETS:
            hit = _rows(friedman, backbone=backbone, target=target)
            row[TARGET_NAMES[target]] = p_value(hit["p"].iloc[0] if len(hit) else None)
        rows.append(row)
    return pd.DataFrame(rows)


def hd95_table(hd95: pd.DataFrame, labels: Mapping[str, str]) -> pd.DataFrame:
    """Patient-level mean HD95 (pixels, lower is better) on the primary targets."""
    frame = hd95[hd95["target"].isin(PRIMARY_TARGETS)] if len(hd95) else hd95
    rows = [
        {
            "backbone": r.backbone,
            "method": _label(labels, r.method),
            "target": TARGET_NAMES[r.target],
            "HD95 (px)": number(r.mean, 2),
            "CI": f"{number(r.ci_low, 2)}–{number(r.ci_high, 2)}",
        }
        for r in frame.itertuples()
    ]
    return or_not_assessed(pd.DataFrame(rows))


def parameter_table(parameters: pd.DataFrame, labels: Mapping[str, str]) -> pd.DataFrame:
    """Networks and trainable parameters per method, and how each seed's training ended."""
    rows = []
    for (backbone, method), part in _groups(parameters, ["backbone", "method"]):
        rows.append(
            {
                "backbone": backbone,
                "method": _label(labels, method),
                "networks": count(part["networks"].iloc[0]),
                "parameters": count(part["parameters"].iloc[0]),
                "epochs trained (per seed)": "; ".join(map(str, part["epochs_trained"])),
                "stopped early": "; ".join("yes" if s else "no" for s in part["stopped_early"]),
            }
        )
    return or_not_assessed(pd.DataFrame(rows))


def convergence_table(comparison: pd.DataFrame, labels: Mapping[str, str]) -> pd.DataFrame:
    """Per seed: the gap between the wound and tissue convergence epochs of the reference
    and of each comparator (claim 3)."""
    rows = [
        {
            "backbone": r.backbone,
            "seed": str(r.seed),
            "comparator": _label(labels, r.method),
            "reference gap (epochs)": str(r.reference_gap),
            "comparator gap (epochs)": str(r.method_gap),
            "window (epochs)": str(r.window),
        }
        for r in comparison.itertuples()
    ]
    return or_not_assessed(pd.DataFrame(rows))


def claim_table(claims: pd.DataFrame) -> pd.DataFrame:
    """The verdict on each headline claim, with the reason the rule gave."""
    headline = claims[claims["headline"].astype(str) == "True"]
    return pd.DataFrame(
        {
            "claim": headline["claim"],
            "verdict": headline["verdict"],
            "reason": headline["reason"],
        }
    )


def claim_detail_table(claims: pd.DataFrame) -> pd.DataFrame:
    """Every row a verdict rests on (backbone, target, comparator), with its evidence."""
    rows = claims[claims["headline"].astype(str) != "True"]
    return or_not_assessed(
        rows[["claim_id", "backbone", "target", "comparator", "verdict", "evidence"]].fillna(""),
        "no claim has more than one row",
    )


def interaction_table(interaction: pd.DataFrame) -> pd.DataFrame:
    """WING-MTL minus EW on each backbone, and the repeated-measures ANOVA over backbones."""
    rows = [
        {
            "target": TARGET_NAMES.get(r.target, r.target),
            "backbone": r.backbone,
            "mean difference": signed(r.mean_difference),
            "p (ANOVA, Holm)": p_value(r.p_anova_holm),
            "p (Friedman)": p_value(r.p_friedman),
            "status": r.status,
        }
        for r in interaction.itertuples()
    ]
    return or_not_assessed(pd.DataFrame(rows))


def additions_table(additions: pd.DataFrame, labels: Mapping[str, str]) -> pd.DataFrame:
    """Does GradNorm add to each seed architecture (descriptive; positive favours GradNorm)."""
    rows = [
        {
            "with GradNorm": _label(labels, r.with_gradnorm),
            "own balancing": _label(labels, r.method),
            "backbone": r.backbone,
            "target": TARGET_NAMES.get(r.target, r.target),
            "difference": signed(r.mean_difference),
            "CI": interval(r.ci_low, r.ci_high),
            "p (t-test, Holm)": p_value(r.ttest_p_holm),
        }
        for r in additions.itertuples()
    ]
    return or_not_assessed(pd.DataFrame(rows), "no seed architecture ran with and without GradNorm")


def image_task_table(image_tasks: pd.DataFrame, labels: Mapping[str, str]) -> pd.DataFrame:
    """AUROC and F1 of the image-level task per label (best checkpoint, mean over seeds)."""
    frame = _rows(image_tasks, checkpoint="best")
    if frame.empty:
        return or_not_assessed(frame, "no recipe of this run has an image-level task")
    wide = (
        frame.groupby(["backbone", "method", "task", "label", "metric"], sort=False)["value"]
        .mean()
        .unstack("metric")
        .reset_index()
    )
    wide["method"] = wide["method"].map(lambda m: _label(labels, m))
    for metric in ("auroc", "f1"):
        if metric in wide:
            wide[metric] = wide[metric].map(number)
    return wide[[c for c in ("backbone", "method", "task", "label", "auroc", "f1") if c in wide]]


def published_table(published: pd.DataFrame, ours: pd.DataFrame) -> pd.DataFrame:
    """The published DFUTissue numbers beside this run's tissue-mean Dice (percent)."""
    rows = [
        {
            "model": r["published model"],
            "score": r.score,
            "percent": number(r.percent, 2),
            "source": r.source,
        }
        for _, r in published.iterrows()
    ]
    for _, r in ours.iterrows():
        value = r.get(("dice", "tissue_mean"))
        rows.append(
            {
                "model": f"this run: {r[('backbone', '')]} {r[('method', '')]}",
                "score": f"tissue mean (DSC), {r[('convention', '')]}",
                "percent": number(value, 2),
                "source": "this compendium (results/evaluation)",
            }
        )
    return pd.DataFrame(rows)


def healing_rate_table(rates: pd.DataFrame, labels: Mapping[str, str]) -> pd.DataFrame:
    """Healing rate (percent of wound area per day) from each source's masks, mixed model."""
    rows = [
        {
            "backbone": r.backbone,
            "masks": _label(labels, r.source),
            "healing rate (%/day)": number(100 * r.healing_rate, 2),
            "CI": f"{number(100 * r.ci_low, 2)} to {number(100 * r.ci_high, 2)}",
            "patients": count(r.n_patients),
            "visits": count(r.n_visits),
            "fit": r.fit,
        }
        for r in rates.itertuples()
    ]
    return or_not_assessed(pd.DataFrame(rows), "no longitudinal analysis in this run")


def healing_error_table(errors: pd.DataFrame, labels: Mapping[str, str]) -> pd.DataFrame:
    """Mean and median per-patient healing-rate error (percent per day) of each method."""
    if errors.empty:
        return or_not_assessed(errors, "no longitudinal analysis in this run")
    grouped = errors.groupby(["backbone", "method", "against"], sort=False)["error"]
    rows = [
        {
            "backbone": backbone,
            "method": _label(labels, method),
            "against": against,
            "patients": count(len(part)),
            "mean error (%/day)": number(100 * part.mean(), 2),
            "median error (%/day)": number(100 * part.median(), 2),
        }
        for (backbone, method, against), part in grouped
    ]
    return pd.DataFrame(rows)


def agreement_table(agreement: pd.DataFrame, labels: Mapping[str, str]) -> pd.DataFrame:
    """Agreement of each method's per-visit measures with the reference masks."""
    rows = [
        {
            "backbone": r.backbone,
            "method": _label(labels, r.method),
            "measure": r.measure,
            "bias": signed(r.bias),
            "limits of agreement": interval(r.loa_low, r.loa_high),
            "ICC(A,1)": number(r.icc),
            "MAE": number(r.mae),
        }
        for r in agreement.itertuples()
    ]
    return or_not_assessed(pd.DataFrame(rows), "no longitudinal analysis in this run")


def par4_table(par4: pd.DataFrame, labels: Mapping[str, str]) -> pd.DataFrame:
    """Agreement of the healer / non-healer call at four weeks (PAR-4) with the reference."""
    rows = [
        {
            "backbone": r.backbone,
            "masks": _label(labels, r.method),
            "against": r.against,
            "patients": count(r.n_patients),
            "agreement (%)": number(r.percent_agreement, 0),
            "Cohen's kappa": number(r.kappa, 2),
        }
        for r in par4.itertuples()
    ]
    return or_not_assessed(pd.DataFrame(rows), "no patient has a visit at four weeks")


def lutseg_agreement_table(agreement: pd.DataFrame) -> pd.DataFrame:
    """The clinicians' spread on LUTSeg's visits: ICC (agreement) per measure."""
    rows = [
        {
            "measure": r.measure,
            "visits": count(r.visits),
            "median |difference|": number(r.median_abs_difference),
            "ICC (agreement)": number(r.icc_agreement),
            "CI": f"{number(r.icc_agreement_low, 2)}–{number(r.icc_agreement_high, 2)}",
        }
        for r in agreement.itertuples()
    ]
    return or_not_assessed(pd.DataFrame(rows), "LUTSeg's annotations were not read")


def lutseg_photograph_table(errors: pd.DataFrame, labels: Mapping[str, str]) -> pd.DataFrame:
    """Each method's error on LUTSeg's photographs beside the clinicians' spread."""
    rows = [
        {
            "method": _label(labels, r.method),
            "measure": r.measure,
            "photographs": count(r.photographs),
            "median |error|": number(r.median_abs_error),
            "clinicians' median |difference|": number(r.clinicians_median_abs_difference),
            "verdict": r.verdict,
        }
        for r in errors.itertuples()
    ]
    return or_not_assessed(pd.DataFrame(rows), "LUTSeg's photographs were not scored")


def external_table(summary: pd.DataFrame, labels: Mapping[str, str], metric: str) -> pd.DataFrame:
    """Patient-level score on each external dataset (never trained on)."""
    frame = _rows(summary, metric=metric)
    rows = [
        {
            "dataset": r.dataset,
            "backbone": r.backbone,
            "method": _label(labels, r.method),
            "target": r.target,
            "patients": count(r.n_patients),
            "images": count(r.n_images),
            "mean": number(r.mean),
            "CI": f"{number(r.ci_low)}–{number(r.ci_high)}",
        }
        for r in frame.itertuples()
    ]
    return or_not_assessed(pd.DataFrame(rows), "no external dataset was read")


def paper_tables(config: Config, results: Mapping[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Every table of the manuscript, by name (the CSV file's stem)."""
    labels = {name: recipe.label for name, recipe in config.recipes.items()}
    metric = config.compare.metric
    unit = "source-photograph group" if "fuseg_id" in results["metadata"] else "patient"
    return {
        "split": split_table(results["split"], unit),
        "recipes": methods_table(config),
        "scores": score_table(results["summary"], labels, metric),
        "paired": paired_table(results["paired"], labels),
        "tissue_classes": tissue_class_table(results["summary"], labels, metric),
        "delta_mtl": delta_table(results["delta"], labels),
        "ranks": rank_table(results["friedman"], results["ranks"], labels),
        "hd95": hd95_table(results["hd95"], labels),
        "parameters": parameter_table(results["parameters"], labels),
        "convergence": convergence_table(results["convergence"], labels),
        "claims": claim_table(results["claims"]),
        "claims_detail": claim_detail_table(results["claims"]),
        "backbone_interaction": interaction_table(results["interaction"]),
        "gradnorm_additions": additions_table(results["additions"], labels),
        "image_tasks": image_task_table(results["image_tasks"], labels),
        "published": published_table(published_dfutissue(), results["ours_percent"]),
        "healing_rates": healing_rate_table(results["healing_rates"], labels),
        "healing_errors": healing_error_table(results["healing_errors"], labels),
        "agreement": agreement_table(results["agreement"], labels),
        "par4_agreement": par4_table(results["par4_agreement"], labels),
        "lutseg_agreement": lutseg_agreement_table(results["lutseg_agreement"]),
        "lutseg_photographs": lutseg_photograph_table(results["lutseg_photographs"], labels),
        "external": external_table(results["external_summary"], labels, metric),
    }
