"""The claim rule: how this compendium judges each of the paper's claims (issue 7, section 1).

This module is the project's one written rule. The compare stage applies it and writes
``results/compare/claims.csv``; the report only renders that table.

Verdicts. Every claim gets one of :data:`VERDICTS`, and a claim whose comparator or analysis
is missing reads ``not assessed`` with the reason: it never disappears from the table.

Paired claims (1), (2a), (2b): WING-MTL (the ``reference``) against a comparator, per backbone
and primary target (``wound``, ``tissue_mean``), on patient-level scores
(:func:`wing.statistics.paired.compare_to_reference`, ``unit="patient"``). Differences are
oriented so that positive favours WING-MTL. A significant p-value alone never supports a claim:
the test's own direction and the confidence interval of the difference must agree with it,
because a rank test says nothing about the mean and a mean says nothing about ranks (16
patients on which WING-MTL is 0.01 worse on 15 and 0.5 better on one have a mean difference of
+0.022 and a Wilcoxon p of about 0.007, yet WING-MTL loses on 15 of 16).

* ``test="ttest"``: significant = Holm-corrected paired t-test p < ``significance``; direction =
  the sign of the mean difference; interval = BCa bootstrap CI of the mean difference
  (resampling patients).
* ``test="wilcoxon"``: significant = Holm-corrected Wilcoxon signed-rank p < ``significance``;
  direction = the rank-biserial correlation AND the median difference (both must point the same
  way); interval = percentile bootstrap CI of the median difference.
* ``supported``: significant, the direction favours WING-MTL and the interval lies above 0.
  ``contradicted``: significant, the direction favours the comparator and the interval lies
  below 0. Otherwise ``no significant difference`` (the reason says when the test was
  significant but the interval straddles 0 or the direction statistics disagree).

A claim with several rows (targets, backbones, comparators) also has an overall row (``backbone``
and ``target`` = ``"all"``): supported iff every row is supported; contradicted iff some row is
contradicted and none is supported; not assessed iff every row is not assessed; otherwise no
significant difference. ``headline`` marks the row that states the claim's verdict.

Claim (3), same-epoch convergence, is judged by a descriptive rule over seeds
(:func:`judge_convergence`); claim (4) needs two or more backbones and reads claim (2a) on each
beside the method x backbone interaction test of
:func:`wing.statistics.interaction.backbone_interaction` (:data:`BACKBONE_RULE`): the gain
holds on every backbone if (2a) is supported on each, or if it is supported on one, the mean
gain is positive on every backbone and the interaction is not significant; claim (5),
parameter efficiency, is a design property of the architecture, not a finding. The Delta-MTL row
(Maninis et al. 2019) reads its patient-bootstrap interval.

Claim (6), longitudinal tracking of healing (:data:`LONGITUDINAL_RULE`), is judged on the
per-patient healing-rate errors of :func:`wing.longitudinal.healing.healing_errors`: |a method's
fitted healing rate - the truth's| for each patient, the rate coming from the mixed model of log
wound area over time. Primary truth is the generator's true rate (the synthetic cohort); data
without one are judged against the rate fitted to the reference masks instead, and the rows say
which (``target``). Per backbone and comparator (STL, EW) the errors are paired on patients and
judged as the paired claims are (:func:`judge_comparison`, Holm over this claim's rows); lower
error is better, so the difference is comparator error minus WING-MTL error and positive
favours WING-MTL. Errors are shown in percent per day (100 x rate). Fewer than three paired
patients, or no table, read ``not assessed``. The agreement, tissue-trend and PAR4 tables of
:mod:`wing.longitudinal` are descriptive beside it: no verdict rests on them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from wing.statistics.convergence import convergence_comparison
from wing.statistics.interaction import ASSESSED
from wing.statistics.paired import COMPARISON_COLUMNS, holm, method_order, paired_comparison

SUPPORTED = "supported"
CONTRADICTED = "contradicted"
NO_DIFFERENCE = "no significant difference"
NOT_ASSESSED = "not assessed"
VERDICTS = (SUPPORTED, CONTRADICTED, NO_DIFFERENCE, NOT_ASSESSED)
FINDING = "finding"
DESIGN_PROPERTY = "design property"
TESTS = ("ttest", "wilcoxon")
PRIMARY_TARGETS = ("wound", "tissue_mean")
CONVENTIONAL = ("stl", "ew")
ALL = "all"

CLAIMS = {
    "1": "(1) WING-MTL segments better than single-task networks (STL)",
    "2a": "(2a) WING-MTL segments better than conventional MTL (equal weighting)",
    "2b": "(2b) WING-MTL segments better than advanced MTL methods",
    "3": "(3) WING-MTL's wound and tissue validation losses reach their minimum at the same epoch",
    "4": "(4) The gains hold on ResNet- and Transformer-based backbones",
    "5": "(5) WING-MTL needs fewer parameters than single-task networks",
    "6": "(6) Longitudinal wound size and tissue proportions track healing",
    "delta_mtl": "Multi-task gain over single-task networks (Delta-MTL)",
}
CLAIM_COLUMNS = [
    "claim_id",
    "claim",
    "backbone",
    "target",
    "comparator",
    "headline",
    "verdict",
    "kind",
    "reason",
    "evidence",
    "rule",
    "unit",
    "n_units",
    "n_patients",
    "n_images",
]

PAIRED_RULES = {
    "ttest": (
        "Patient-level paired t-test, two-sided, Holm-corrected over the compare family; "
        "differences are WING-MTL minus comparator, oriented so that positive favours WING-MTL. "
        "supported: p_Holm < {significance}, mean difference > 0 and its 95% BCa bootstrap CI "
        "(resampling patients) above 0. contradicted: p_Holm < {significance}, mean difference "
        "< 0 and its CI below 0. Otherwise no significant difference (also when p_Holm < "
        "{significance} but the CI straddles 0)."
    ),
    "wilcoxon": (
        "Patient-level Wilcoxon signed-rank test, two-sided, Holm-corrected over the compare "
        "family; differences are WING-MTL minus comparator, oriented so that positive favours "
        "WING-MTL. supported: p_Holm < {significance}, rank-biserial correlation > 0 and median "
        "difference > 0, and the 95% percentile bootstrap CI of the median difference (resampling "
        "patients) above 0. contradicted: p_Holm < {significance}, rank-biserial < 0 and median "
        "difference < 0, and that CI below 0. Otherwise no significant difference (also when "
        "p_Holm < {significance} but the CI straddles 0 or the two direction statistics "
        "disagree)."
    ),
}
OVERALL_RULE = (
    "Overall over the rows of this claim: supported iff every row is supported; contradicted "
    "iff some row is contradicted and none is supported; not assessed iff every row is not "
    "assessed; otherwise no significant difference."
)
CONVERGENCE_RULE = (
    "Descriptive rule over seeds (with 2-5 seeds no test has power). A task's convergence epoch "
    "is the first epoch whose validation loss is within a relative tolerance of {tolerance} of "
    "its minimum; the gap is |wound epoch - tissue epoch|; 'same epoch' means gap <= {window} "
    "epoch(s). not assessed: no WING-MTL run, no comparator run on a paired seed, or some run "
    "(any method) converges at its last epoch without having stopped early (its loss was still "
    "falling). supported: WING-MTL's gap <= {window} on every seed and <= every comparator's gap "
    "on every paired seed, strictly smaller at least once. contradicted: WING-MTL's gap > "
    "{window} on every seed and >= every comparator's gap on every paired seed. Otherwise no "
    "significant difference."
)
BACKBONE_RULE = (
    "Needs two or more backbones (not assessed otherwise). Per backbone, the verdict of claim "
    "(2a), WING-MTL against equal weighting over the primary targets (combined as for several "
    "rows). Beside it, the backbone interaction: per primary target, a one-way "
    "repeated-measures ANOVA over backbones of each patient's WING-MTL minus equal-weighting "
    "difference (the patients common to every backbone; equivalently the method x backbone "
    "interaction), Holm-corrected over the primary targets. supported iff (2a) is contradicted "
    "on no backbone and either (a) (2a) is supported on every backbone, or (b) (2a) is "
    "supported on at least one backbone and, on every primary target, the mean patient-level "
    "difference is > 0 on every backbone and the interaction was tested and is not significant "
    "(p_Holm >= {significance}). contradicted iff (2a) is contradicted on some backbone and "
    "supported on none. not assessed iff (2a) is not assessed on every backbone. Otherwise no "
    "significant difference."
)
PARAMETER_RULE = (
    "Design property of the architecture, not a finding: parameters of WING-MTL (one shared "
    "network) divided by those of STL (one network per task, summed) on the same backbone; "
    "supported if the ratio < 1, contradicted if > 1, no significant difference if equal."
)
DELTA_RULE = (
    "Delta-MTL of WING-MTL against STL (mean relative gain over the primary targets, percent; "
    "Maninis et al. 2019) with its 95% percentile bootstrap CI resampling patients: supported "
    "if the CI lies above 0, contradicted if below 0, otherwise no significant difference."
)
LONGITUDINAL_RULE = (
    "Per-patient healing-rate error: |a method's healing rate - the true rate| per patient, the "
    "rate being minus the slope of log wound area over time in a linear mixed model with random "
    "intercepts and slopes per patient (per-patient OLS slopes where it does not converge), in "
    "percent per day. The true rate is the generator's (synthetic data; primary); without one, "
    "the rate fitted to the reference masks. Per backbone and comparator (STL, EW): the "
    "patients with both errors, differences = comparator error minus WING-MTL error (lower "
    "error is better, so positive favours WING-MTL), judged with the paired test of claims (1) "
    "and (2) (compare.test), Holm-corrected over this claim's rows. supported: p_Holm < "
    "{significance}, the test's direction statistics > 0 and the 95% bootstrap CI (resampling "
    "patients) above 0. contradicted: p_Holm < {significance}, direction < 0 and the CI below 0. "
    "Otherwise no significant difference. not assessed: no longitudinal analysis, no errors for "
    "WING-MTL or the comparator, or fewer than 3 paired patients. Agreement with the reference "
    "(Bland-Altman, ICC, correlation), tissue trends and PAR4 calls are descriptive beside it."
)
LONGITUDINAL_MIN_PATIENTS = 3


def _fmt_p(p: float) -> str:
    return "n/a" if pd.isna(p) else ("< 0.001" if p < 0.001 else f"{p:.3f}")


def _fmt(x: float, signed: bool = True) -> str:
    return "n/a" if pd.isna(x) else (f"{x:+.3f}" if signed else f"{x:.3f}")


def _direction(row: Mapping, test: str) -> dict[str, float]:
    """The statistics that give the direction of ``test``'s effect."""
    if test == "ttest":
        return {"mean difference": row["mean_difference"]}
    return {"rank-biserial": row["rank_biserial"], "median difference": row["median_difference"]}


def _interval(row: Mapping, test: str) -> tuple[float, float, str]:
    if test == "ttest":
        return row["ci_low"], row["ci_high"], "95% BCa CI of the mean difference"
    return row["median_ci_low"], row["median_ci_high"], "95% bootstrap CI of the median difference"


def judge_comparison(
    row: Mapping, test: str = "ttest", significance: float = 0.05
) -> tuple[str, str]:
    """Verdict and reason for one row of :func:`~wing.statistics.paired.compare_to_reference`.

    Implements the paired rule of this module (:data:`PAIRED_RULES`): significant (Holm p <
    ``significance``) and the test's direction favouring the reference and its interval above 0
    -> ``supported``; the mirror image -> ``contradicted``; anything else -> ``no significant
    difference``, with the reason; fewer than two paired units or no p-value -> ``not
    assessed``.
    """
    if test not in TESTS:
        raise ValueError(f"test must be one of {TESTS}, got {test!r}")
    n, p = row["n"], row[f"{test}_p_holm"]
    units = f"{row.get('unit', 'patient')}s"
    if pd.isna(n) or n < 2 or pd.isna(p):
        return NOT_ASSESSED, f"{0 if pd.isna(n) else int(n)} paired {units}: too few to test"
    low, high, interval = _interval(row, test)
    direction = _direction(row, test)
    shown = ", ".join(f"{name} {_fmt(value)}" for name, value in direction.items())
    favours = all(v > 0 for v in direction.values())
    against = all(v < 0 for v in direction.values())
    name = "paired t-test" if test == "ttest" else "Wilcoxon signed-rank test"
    if p >= significance:
        return NO_DIFFERENCE, f"{name} not significant (p_Holm {_fmt_p(p)} >= {significance})"
    significant = f"{name} significant (p_Holm {_fmt_p(p)})"
    if favours and low > 0:
        return SUPPORTED, f"{significant}, {shown} and the {interval} above 0"
    if against and high < 0:
        return CONTRADICTED, f"{significant}, {shown} and the {interval} below 0"
    if not (favours or against):
        return NO_DIFFERENCE, f"{significant} but the direction statistics disagree ({shown})"
    ci = f"{_fmt(low)} to {_fmt(high)}"
    return NO_DIFFERENCE, f"{significant} but the {interval} ({ci}) straddles 0"


def combine_verdicts(verdicts: Iterable[str]) -> str:
    """The overall verdict of several rows (:data:`OVERALL_RULE`)."""
    verdicts = list(verdicts)
    if not verdicts or all(v == NOT_ASSESSED for v in verdicts):
        return NOT_ASSESSED
    if all(v == SUPPORTED for v in verdicts):
        return SUPPORTED
    if CONTRADICTED in verdicts and SUPPORTED not in verdicts:
        return CONTRADICTED
    return NO_DIFFERENCE


def _row(claim_id: str, verdict: str, reason: str, rule: str, **fields) -> dict:
    """One claims-table row; ``kind`` defaults to finding, counts to missing."""
    return {
        "claim_id": claim_id,
        "claim": CLAIMS[claim_id],
        "backbone": fields.get("backbone", ALL),
        "target": fields.get("target", ALL),
        "comparator": fields.get("comparator", ""),
        "headline": fields.get("headline", True),
        "verdict": verdict,
        "kind": fields.get("kind", FINDING),
        "reason": reason,
        "evidence": fields.get("evidence", reason),
        "rule": rule,
        "unit": fields.get("unit", ""),
        "n_units": fields.get("n_units", pd.NA),
        "n_patients": fields.get("n_patients", pd.NA),
        "n_images": fields.get("n_images", pd.NA),
    }


def _with_overall(claim_id: str, rows: list[dict], rule: str, comparator: str = "") -> list[dict]:
    """``rows`` (no longer headlines) and their overall row, or the single row as headline."""
    if len(rows) == 1:
        return [{**rows[0], "headline": True}]
    verdict = combine_verdicts(r["verdict"] for r in rows)
    counts = {
        k: max((r[k] for r in rows if not pd.isna(r[k])), default=pd.NA)
        for k in ("n_units", "n_patients", "n_images")
    }
    summary = "; ".join(
        f"{r['backbone']} {r['target']}"
        + (f" vs {r['comparator']}" if r["comparator"] else "")
        + f": {r['verdict']}"
        for r in rows
    )
    overall = _row(
        claim_id,
        verdict,
        f"{sum(r['verdict'] == SUPPORTED for r in rows)} of {len(rows)} rows supported",
        f"{OVERALL_RULE} Each row: {rule}",
        comparator=comparator,
        evidence=summary,
        unit=rows[0]["unit"],
        kind=rows[0]["kind"],
        **counts,
    )
    return [*({**r, "headline": False} for r in rows), overall]


def _paired_evidence(row: Mapping, test: str) -> str:
    low, high, interval = _interval(row, test)
    direction = ", ".join(f"{k} {_fmt(v)}" for k, v in _direction(row, test).items())
    orientation = "" if row.get("higher_is_better", True) else " (lower is better)"
    p_name = "paired t-test" if test == "ttest" else "Wilcoxon"
    return (
        f"{row['backbone']} {row['target']} {row['metric']}{orientation}, "
        f"{row['n_patients']} patients / {row['n_images']} images: patient-level mean "
        f"{row['reference']} {_fmt(row['mean_reference'], False)} vs {row['method']} "
        f"{_fmt(row['mean_method'], False)}; {direction} ({interval} {_fmt(low)} to "
        f"{_fmt(high)}); {p_name} p_Holm {_fmt_p(row[f'{test}_p_holm'])}"
    )


def _paired_claim(
    claim_id: str,
    paired: pd.DataFrame,
    comparators: Sequence[str],
    methods_run: set[str],
    test: str,
    significance: float,
) -> list[dict]:
    """Rows of a paired claim against ``comparators`` (one per backbone, target, comparator)."""
    rule = PAIRED_RULES[test].format(significance=significance)
    rows = []
    for comparator in comparators:
        found = paired[paired["method"] == comparator]
        if found.empty:
            why = (
                f"{comparator} was run but has no paired patient-level scores"
                if comparator in methods_run
                else f"comparator {comparator} was not run"
            )
            rows.append(_row(claim_id, NOT_ASSESSED, why, rule, comparator=comparator))
            continue
        for r in found.to_dict("records"):
            verdict, reason = judge_comparison(r, test, significance)
            rows.append(
                _row(
                    claim_id,
                    verdict,
                    reason,
                    rule,
                    backbone=r["backbone"],
                    target=r["target"],
                    comparator=comparator,
                    evidence=_paired_evidence(r, test),
                    unit="patients",
                    n_units=r["n"],
                    n_patients=r["n_patients"],
                    n_images=r["n_images"],
                )
            )
    return _with_overall(claim_id, rows, rule, ", ".join(comparators))


def judge_convergence(
    table: pd.DataFrame, reference: str = "gradnorm", window: int = 0
) -> tuple[str, str, str, int]:
    """Claim (3) on one backbone's runs (:func:`~wing.statistics.convergence_table` rows).

    Implements :data:`CONVERGENCE_RULE` and returns ``(verdict, reason, evidence, n_seeds)``
    with ``n_seeds`` the reference's seeds with both tasks' epochs.
    """
    falling = table[table["at_last_epoch"].astype(bool)] if "at_last_epoch" in table else table[:0]
    ours = table[table["method"] == reference].dropna(subset=["epoch_gap"])
    gaps = ", ".join(
        f"{method} {[int(g) for g in group['epoch_gap'].dropna()]}"
        for method, group in table.groupby("method", sort=False)
    )
    evidence = f"|wound - tissue| epoch gap per seed: {gaps}" if gaps else "no runs"
    if ours.empty:
        return NOT_ASSESSED, f"no {reference} run with both tasks' epochs", evidence, 0
    if not falling.empty:
        runs = ", ".join(f"{r.method} seed {r.seed}" for r in falling.itertuples())
        reason = f"validation loss still falling at the last epoch in {runs}"
        return NOT_ASSESSED, reason, evidence, len(ours)
    pairs = convergence_comparison(table, reference, window)
    if pairs.empty:
        reason = "no comparator run on a seed that the reference also ran"
        return NOT_ASSESSED, reason, evidence, len(ours)
    within = ours["epoch_gap"].astype(int) <= window
    if (
        within.all()
        and (pairs["gap_difference"] <= 0).all()
        and (pairs["gap_difference"] < 0).any()
    ):
        reason = f"{reference}'s gap <= {window} on every seed and never above a comparator's"
        return SUPPORTED, reason, evidence, len(ours)
    if not within.any() and (pairs["gap_difference"] >= 0).all():
        reason = f"{reference}'s gap > {window} on every seed and never below a comparator's"
        return CONTRADICTED, reason, evidence, len(ours)
    reason = (
        f"{reference}'s gap within {window} epoch(s) on {int(within.sum())} of {len(ours)} seeds; "
        f"smaller than the comparator's on {int((pairs['gap_difference'] < 0).sum())}, larger on "
        f"{int((pairs['gap_difference'] > 0).sum())} of {len(pairs)} paired seeds"
    )
    return NO_DIFFERENCE, reason, evidence, len(ours)


def _convergence_claim(
    convergence: pd.DataFrame, reference: str, window: int, tolerance: float
) -> list[dict]:
    rule = CONVERGENCE_RULE.format(tolerance=tolerance, window=window)
    if convergence is None or convergence.empty:
        return [_row("3", NOT_ASSESSED, "no training histories", rule)]
    table = convergence if "backbone" in convergence else convergence.assign(backbone=ALL)
    rows = []
    for backbone, block in table.groupby("backbone", sort=False):
        verdict, reason, evidence, n_seeds = judge_convergence(block, reference, window)
        rows.append(
            _row(
                "3",
                verdict,
                reason,
                rule,
                backbone=backbone,
                target="wound vs tissue",
                evidence=evidence,
                unit="seeds",
                n_units=n_seeds,
            )
        )
    return _with_overall("3", rows, rule)


def _interaction_route(
    interaction: pd.DataFrame | None,
    backbones: list[str],
    targets: Sequence[str],
    significance: float,
) -> tuple[list[str], str]:
    """Route (b) of :data:`BACKBONE_RULE` on the interaction table: what fails it (nothing
    when the gain is positive on every backbone and target and no interaction is significant)
    and the evidence."""
    if interaction is None or interaction.empty:
        return ["no backbone interaction table"], "none"
    failures, parts = [], []
    for target in targets:
        rows = interaction[interaction["target"] == target]
        if rows.empty:
            failures.append(f"no interaction row for {target}")
            parts.append(f"{target}: no row")
            continue
        first = rows.iloc[0]
        means = dict(zip(rows["backbone"], rows["mean_difference"], strict=True))
        shown = ", ".join(f"{b} {_fmt(means.get(b, np.nan))}" for b in backbones)
        not_positive = [b for b in backbones if not means.get(b, np.nan) > 0]
        if not_positive:
            failures.append(f"{target} mean difference not > 0 on {', '.join(not_positive)}")
        if first["status"] != ASSESSED:
            failures.append(f"{target} interaction {first['status']}")
            parts.append(f"{target}: mean difference {shown}; interaction {first['status']}")
            continue
        p = first["p_anova_holm"]
        if not p >= significance:
            failures.append(f"{target} interaction significant (p_Holm {_fmt_p(p)})")
        parts.append(
            f"{target}: mean difference {shown}; interaction F({first['ddof1']}, "
            f"{first['ddof2']}) = {first['F']:.2f}, p_Holm {_fmt_p(p)} ({first['n_patients']} "
            f"patients; Friedman p {_fmt_p(first['p_friedman'])})"
        )
    return failures, "; ".join(parts)


def _backbone_verdict(verdicts: list[str], failures: list[str]) -> tuple[str, str]:
    """Claim (4)'s verdict from (2a)'s verdict on each backbone and what fails route (b)."""
    supported, n = verdicts.count(SUPPORTED), len(verdicts)
    if all(v == NOT_ASSESSED for v in verdicts):
        return NOT_ASSESSED, "claim (2a) not assessed on any backbone"
    if CONTRADICTED in verdicts:
        if not supported:
            return CONTRADICTED, "claim (2a) contradicted on some backbone, supported on none"
        return NO_DIFFERENCE, "claim (2a) supported on some backbones, contradicted on others"
    if supported == n:
        return SUPPORTED, "claim (2a) supported on every backbone"
    if not supported:
        return NO_DIFFERENCE, "claim (2a) supported on no backbone"
    if not failures:
        return SUPPORTED, (
            f"claim (2a) supported on {supported} of {n} backbones; on every primary target the "
            "mean gain is positive on every backbone and the backbone interaction is not "
            "significant"
        )
    why = "; ".join(failures)
    return NO_DIFFERENCE, f"claim (2a) supported on {supported} of {n} backbones; {why}"


def _backbone_claim(
    claim_2a: list[dict],
    backbones: list[str],
    interaction: pd.DataFrame | None = None,
    targets: Sequence[str] = PRIMARY_TARGETS,
    significance: float = 0.05,
) -> list[dict]:
    """Rows of claim (4) (:data:`BACKBONE_RULE`): one per backbone with its (2a) verdict, and
    the overall row, from (2a)'s per-backbone rows and the
    :func:`~wing.statistics.interaction.backbone_interaction` table."""
    rule = BACKBONE_RULE.format(significance=significance)
    if len(backbones) < 2:
        reason = (
            f"only {len(backbones)} backbone ({', '.join(map(str, backbones)) or 'none'}) was "
            "run; the claim needs ResNet- and Transformer-based backbones"
        )
        return [_row("4", NOT_ASSESSED, reason, rule)]
    rows = []
    for backbone in backbones:
        verdicts = [r["verdict"] for r in claim_2a if r["backbone"] == backbone]
        verdict = combine_verdicts(verdicts)
        reason = f"claim (2a) on {backbone}: {verdict}" if verdicts else "ew not compared"
        rows.append(_row("4", verdict, reason, rule, backbone=backbone, comparator="ew"))
    failures, interaction_evidence = _interaction_route(
        interaction, backbones, targets, significance
    )
    verdict, reason = _backbone_verdict([r["verdict"] for r in rows], failures)
    per_backbone = "; ".join(f"{r['backbone']}: (2a) {r['verdict']}" for r in rows)
    overall = _row(
        "4",
        verdict,
        reason,
        rule,
        comparator="ew",
        evidence=f"{per_backbone}. Backbone interaction: {interaction_evidence}",
        unit="patients",
        **{
            k: max((r[k] for r in claim_2a if not pd.isna(r[k])), default=pd.NA)
            for k in ("n_units", "n_patients", "n_images")
        },
    )
    return [*({**r, "headline": False} for r in rows), overall]


def _parameter_claim(parameters: pd.DataFrame | None, reference: str) -> list[dict]:
    common = {"kind": DESIGN_PROPERTY, "comparator": "stl"}
    if parameters is None or parameters.empty or "parameters" not in parameters:
        return [_row("5", NOT_ASSESSED, "no parameter counts", PARAMETER_RULE, **common)]
    table = parameters if "backbone" in parameters else parameters.assign(backbone=ALL)
    rows = []
    for backbone, block in table.groupby("backbone", sort=False):
        counts = block.groupby("method")["parameters"].first()
        if not {"stl", reference} <= set(counts.index):
            missing = sorted({"stl", reference} - set(counts.index))
            reason = f"no parameter count for {', '.join(missing)}"
            rows.append(
                _row("5", NOT_ASSESSED, reason, PARAMETER_RULE, backbone=backbone, **common)
            )
            continue
        ratio = counts[reference] / counts["stl"]
        verdict = SUPPORTED if ratio < 1 else CONTRADICTED if ratio > 1 else NO_DIFFERENCE
        reason = (
            f"design property: {reference} has {int(counts[reference]):,} parameters, STL "
            f"{int(counts['stl']):,} ({ratio:.0%})"
        )
        rows.append(_row("5", verdict, reason, PARAMETER_RULE, backbone=backbone, **common))
    return _with_overall("5", rows, PARAMETER_RULE, "stl")


def _delta_claim(delta: pd.DataFrame | None, reference: str) -> list[dict]:
    common = {"comparator": "stl", "unit": "patients"}
    if delta is None or delta.empty:
        return [
            _row(
                "delta_mtl", NOT_ASSESSED, "no Delta-MTL table (STL not run?)", DELTA_RULE, **common
            )
        ]
    ours = delta[delta["method"] == reference]
    if ours.empty:
        return [
            _row("delta_mtl", NOT_ASSESSED, f"no Delta-MTL for {reference}", DELTA_RULE, **common)
        ]
    rows = []
    for r in ours.to_dict("records"):
        low, high = r.get("delta_mtl_ci_low", np.nan), r.get("delta_mtl_ci_high", np.nan)
        if pd.isna(low) or pd.isna(high):
            verdict = NOT_ASSESSED
        else:
            verdict = SUPPORTED if low > 0 else CONTRADICTED if high < 0 else NO_DIFFERENCE
        evidence = (
            f"{r['backbone']}: Delta-MTL of {reference} = {r['delta_mtl']:+.2f}% (95% bootstrap "
            f"CI {low:+.2f} to {high:+.2f}, {r.get('n_patients', 'n/a')} patients)"
        )
        reason = "no bootstrap interval" if verdict == NOT_ASSESSED else evidence
        rows.append(
            _row(
                "delta_mtl",
                verdict,
                reason,
                DELTA_RULE,
                backbone=r["backbone"],
                evidence=evidence,
                n_units=r.get("n_patients", pd.NA),
                n_patients=r.get("n_patients", pd.NA),
                **common,
            )
        )
    return _with_overall("delta_mtl", rows, DELTA_RULE, "stl")


def _healing_evidence(row: Mapping, test: str) -> str:
    low, high, interval = _interval(row, test)
    direction = ", ".join(f"{k} {_fmt(v)}" for k, v in _direction(row, test).items())
    p_name = "paired t-test" if test == "ttest" else "Wilcoxon"
    return (
        f"{row['backbone']} per-patient healing-rate error vs {row['against']} ({row['units']}, "
        f"lower is better), {row['n']} patients: mean {row['reference']} "
        f"{_fmt(row['mean_b'], False)} vs {row['method']} {_fmt(row['mean_a'], False)}; "
        f"{direction} ({interval} {_fmt(low)} to {_fmt(high)}); {p_name} p_Holm "
        f"{_fmt_p(row[f'{test}_p_holm'])}"
    )


def _healing_target(errors: pd.DataFrame, reference: str) -> str | None:
    """Which rate the errors are measured against: the truth where WING-MTL has errors
    against it, else the reference masks' fit; None when it has neither."""
    ours = errors[(errors["method"] == reference) & errors["error"].notna()]
    for against in ("truth", "reference"):
        if (ours["against"] == against).any():
            return against
    return None


def _longitudinal_claim(
    healing_errors: pd.DataFrame | None,
    reference: str,
    test: str,
    significance: float,
    n_boot: int,
    seed: int,
) -> list[dict]:
    """Rows of claim (6) (:data:`LONGITUDINAL_RULE`): per backbone and conventional comparator,
    the paired comparison of per-patient healing-rate errors, and the overall row."""
    rule = LONGITUDINAL_RULE.format(significance=significance)
    if healing_errors is None or healing_errors.empty:
        return [_row("6", NOT_ASSESSED, "no longitudinal analysis in this run", rule)]
    missing = [c for c in ("method", "patient_id", "against", "error") if c not in healing_errors]
    if missing:
        raise ValueError(f"healing-error table lacks columns {missing}")
    errors = healing_errors if "backbone" in healing_errors else healing_errors.assign(backbone=ALL)
    against = _healing_target(errors, reference)
    if against is None:
        reason = f"no healing-rate errors of {reference} against the truth or the reference masks"
        return [_row("6", NOT_ASSESSED, reason, rule, unit="patients")]
    label = "truth" if against == "truth" else "reference masks"
    target = f"healing-rate error vs {label}"
    errors = errors[errors["against"] == against]
    tested, rows = [], []
    for backbone, block in errors.groupby("backbone", sort=False):
        per_patient = block.pivot_table(
            index="patient_id", columns="method", values="error", aggfunc="mean"
        )
        units = "% per day"
        if "time_unit" in block and (block["time_unit"] == "visit").any():
            units = "% per visit"
        for comparator in CONVENTIONAL:
            common = {"backbone": backbone, "target": target, "comparator": comparator}
            if reference not in per_patient or comparator not in per_patient:
                who = reference if reference not in per_patient else comparator
                reason = f"no healing-rate errors of {who} on {backbone}"
                rows.append(_row("6", NOT_ASSESSED, reason, rule, unit="patients", **common))
                continue
            pairs = 100.0 * per_patient[[comparator, reference]].dropna()
            if len(pairs) < LONGITUDINAL_MIN_PATIENTS:
                reason = (
                    f"{len(pairs)} patients with healing-rate errors of both {reference} and "
                    f"{comparator}: fewer than {LONGITUDINAL_MIN_PATIENTS}"
                )
                rows.append(
                    _row(
                        "6",
                        NOT_ASSESSED,
                        reason,
                        rule,
                        unit="patients",
                        n_units=len(pairs),
                        n_patients=len(pairs),
                        **common,
                    )
                )
                continue
            result = paired_comparison(
                pairs[comparator].to_numpy(), pairs[reference].to_numpy(), n_boot, seed
            )
            comparison = {
                **result,
                "unit": "patient",
                "backbone": backbone,
                "against": label,
                "units": units,
                "reference": reference,
                "method": comparator,
            }
            tested.append(comparison)
            rows.append({"comparison": comparison, **common})
    p_values = {name: holm([c[f"{name}_p"] for c in tested]) for name in TESTS}
    for i, comparison in enumerate(tested):
        for name in TESTS:
            comparison[f"{name}_p_holm"] = p_values[name][i]
    out = []
    for row in rows:
        if "comparison" not in row:
            out.append(row)
            continue
        comparison = row.pop("comparison")
        verdict, reason = judge_comparison(comparison, test, significance)
        out.append(
            _row(
                "6",
                verdict,
                reason,
                rule,
                evidence=_healing_evidence(comparison, test),
                unit="patients",
                n_units=comparison["n"],
                n_patients=comparison["n"],
                **row,
            )
        )
    return _with_overall("6", out, rule, ", ".join(CONVENTIONAL))


def claims_table(
    paired: pd.DataFrame | None,
    convergence: pd.DataFrame | None,
    delta: pd.DataFrame | None,
    parameters: pd.DataFrame | None,
    reference: str = "gradnorm",
    test: str = "ttest",
    significance: float = 0.05,
    methods_run: Iterable[str] | None = None,
    targets: Sequence[str] = PRIMARY_TARGETS,
    window: int = 0,
    tolerance: float = 0.0,
    interaction: pd.DataFrame | None = None,
    healing_errors: pd.DataFrame | None = None,
    n_boot: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """Every claim of the paper judged on this run's tables, by the rules of this module.

    ``paired``: patient-level :func:`~wing.statistics.paired.compare_to_reference` (rows of
    ``targets`` are judged); ``convergence``: the per-run
    :func:`~wing.statistics.convergence_table` (made with ``tolerance``); ``delta``:
    :func:`~wing.statistics.delta_mtl`; ``parameters``: the run-level table with ``backbone,
    method, parameters``; ``methods_run``: the methods trained (default: those in the tables),
    used to tell a comparator that was not run from one that has no scores. ``test`` and
    ``significance`` are ``compare.test`` and ``compare.significance``; ``window`` and
    ``tolerance`` are ``compare.convergence_window`` and ``compare.convergence_tolerance``.
    ``interaction``: :func:`~wing.statistics.interaction.backbone_interaction` of the reference
    against ``ew`` (without it, claim (4) can only be supported on every backbone's (2a)).
    ``healing_errors``: the ``healing_errors`` table of
    :func:`wing.longitudinal.healing.longitudinal_tables` (without it, claim (6) is not
    assessed); ``n_boot`` and ``seed`` are the bootstrap of its paired comparisons
    (``compare.n_boot``). Columns :data:`CLAIM_COLUMNS`; claims in the order (1), (2a), (2b),
    (3), (4), (5), (6), Delta-MTL; every claim has exactly one ``headline`` row.
    """
    if test not in TESTS:
        raise ValueError(f"test must be one of {TESTS}, got {test!r}")
    if paired is None or paired.empty:
        paired = pd.DataFrame(columns=COMPARISON_COLUMNS)
    if "unit" in paired and (paired["unit"] != "patient").any():
        raise ValueError("claims are judged on patient-level comparisons (unit='patient')")
    primary = paired[paired["target"].isin(list(targets)) & (paired["reference"] == reference)]
    tables = [t for t in (paired, convergence, parameters, delta) if t is not None and len(t)]
    methods = {reference, *(m for t in tables if "method" in t for m in t["method"].unique())}
    methods_run = set(methods_run) if methods_run is not None else methods
    present = set(primary["method"])
    advanced = method_order((methods_run | present) - {*CONVENTIONAL, reference})
    rows = [
        *_paired_claim("1", primary, ["stl"], methods_run, test, significance),
        *_paired_claim("2a", primary, ["ew"], methods_run, test, significance),
    ]
    if advanced:
        rows += _paired_claim("2b", primary, advanced, methods_run, test, significance)
    else:
        rule = PAIRED_RULES[test].format(significance=significance)
        rows.append(_row("2b", NOT_ASSESSED, "no advanced MTL method was run", rule))
    rows += _convergence_claim(convergence, reference, window, tolerance)
    backbones = [b for t in tables if "backbone" in t for b in t["backbone"].unique()]
    claim_2a = [r for r in rows if r["claim_id"] == "2a" and r["backbone"] != ALL]
    if interaction is not None and not interaction.empty:
        ours = (interaction["reference"] == reference) & (interaction["comparator"] == "ew")
        interaction = interaction[ours]
    rows += _backbone_claim(
        claim_2a, list(dict.fromkeys(backbones)), interaction, targets, significance
    )
    rows += _parameter_claim(parameters, reference)
    rows += _longitudinal_claim(healing_errors, reference, test, significance, n_boot, seed)
    rows += _delta_claim(delta, reference)
    out = pd.DataFrame(rows, columns=CLAIM_COLUMNS)
    for column in ("n_units", "n_patients", "n_images"):
        out[column] = pd.to_numeric(out[column], errors="coerce").astype("Int64")
    return out
