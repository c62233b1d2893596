"""Does WING-MTL's gain over equal weighting depend on the backbone? (claim 4)

Claim (4) says the gains hold on ResNet- and Transformer-based backbones. Beside the verdict of
claim (2a) on each backbone, this module tests whether the size of the gain differs between
backbones: the method x backbone interaction.

The unit is the patient (issue 7, section 2), as everywhere in :mod:`wing.statistics`: a
patient's images are correlated, and the same patients are scored by every backbone, so the
backbones are repeated measures on one patient. Per primary target and backbone, each patient's
difference d = reference - comparator of the patient-level scores
(:func:`wing.statistics.paired.patient_level`; comparator - reference for HD95, so a positive
difference always favours the reference) is taken for the patients with a difference on every
backbone. Then:

* a one-way repeated-measures ANOVA of d over backbones, subject = patient (Fisher's F with
  ddof1 = k - 1, ddof2 = (k - 1)(n - 1) for k backbones and n patients). It is the same F test
  as the method x backbone interaction of a two-way (method x backbone) repeated-measures
  ANOVA, because the interaction is exactly the variation of the method difference over
  backbones. The p-value is the uncorrected one: with two backbones sphericity holds trivially,
  and with more the uncorrected p is the stricter choice for a claim that rests on the test
  *not* being significant. Holm's correction (Holm 1979) is applied over the targets
  (``p_anova_holm``). The sums of squares are computed here rather than by
  ``pingouin.rm_anova``, which returns F = -1e15 and p = 1 when the error sum of squares is 0
  (a pure backbone effect); the tests compare both with ``statsmodels`` ``AnovaRM`` and
  ``pingouin.rm_anova`` on ordinary data.
* Friedman's test (Friedman 1937) of d over backbones, the rank-based check that does not
  assume normal differences, with the tie correction of ``scipy.stats.friedmanchisquare``
  (computed here because scipy refuses two groups, the case of two backbones).

A target is ``not assessed`` (with the reason in ``status``) with fewer than 2 backbones on
which both methods were scored or fewer than 3 patients common to them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from wing.statistics.paired import higher_is_better, holm

ASSESSED = "assessed"
MIN_BACKBONES = 2
MIN_PATIENTS = 3
INTERACTION_COLUMNS = [
    "target",
    "metric",
    "reference",
    "comparator",
    "n_backbones",
    "n_patients",
    "status",
    "F",
    "ddof1",
    "ddof2",
    "p_anova",
    "p_anova_holm",
    "friedman_statistic",
    "p_friedman",
    "backbone",
    "mean_difference",
    "sign",
]


def rm_anova(differences: np.ndarray) -> tuple[float, int, int, float]:
    """One-way repeated-measures ANOVA of a patients x backbones table: (F, ddof1, ddof2, p).

    F = (SS_backbone / (k - 1)) / (SS_error / ((k - 1)(n - 1))), SS_error the sum of squared
    residuals d - patient mean - backbone mean + grand mean. Nothing varying over backbones
    gives (0, 1); an error sum of squares of 0 with a backbone effect gives (inf, 0).
    """
    d = np.asarray(differences, dtype=float)
    n, k = d.shape
    grand = d.mean()
    columns, rows = d.mean(axis=0), d.mean(axis=1, keepdims=True)
    ss_backbone = n * ((columns - grand) ** 2).sum()
    # The residuals themselves, not SS_total - SS_backbone - SS_patient, whose cancellation
    # leaves rounding noise of the order of SS_total where the error is exactly 0.
    ss_error = ((d - rows - columns + grand) ** 2).sum()
    ddof1, ddof2 = k - 1, (k - 1) * (n - 1)
    # Sums of squares below this are rounding noise (deviations ~1e-10 of the values).
    noise = 1e-20 * (d**2).sum()
    if ss_backbone <= noise:
        return 0.0, ddof1, ddof2, 1.0
    if ss_error <= noise:
        return np.inf, ddof1, ddof2, 0.0
    f = (ss_backbone / ddof1) / (ss_error / ddof2)
    return float(f), ddof1, ddof2, float(stats.f.sf(f, ddof1, ddof2))


def friedman(differences: np.ndarray) -> tuple[float, float]:
    """Friedman's chi-square over the columns of a patients x backbones table: (statistic, p).

    Ranks within each patient, ties sharing the mean rank and corrected for as in
    ``scipy.stats.friedmanchisquare``, chi-square with k - 1 degrees of freedom; (NaN, NaN)
    when every patient ties on every backbone.
    """
    d = np.asarray(differences, dtype=float)
    n, k = d.shape
    ranks = np.apply_along_axis(stats.rankdata, 1, d)
    ties = sum(
        (counts**3 - counts).sum()
        for counts in (np.unique(r, return_counts=True)[1] for r in ranks)
    )
    correction = 1.0 - ties / (n * k * (k**2 - 1))
    if correction <= 0:
        return np.nan, np.nan
    statistic = 12.0 / (n * k * (k + 1)) * (ranks.sum(axis=0) ** 2).sum() - 3 * n * (k + 1)
    statistic /= correction
    return float(statistic), float(stats.chi2.sf(statistic, k - 1))


def _differences(
    block: pd.DataFrame, reference: str, comparator: str, better: bool
) -> pd.DataFrame:
    """Patients x backbones table of oriented differences, the patients common to every
    backbone on which both methods were scored."""
    out = {}
    for backbone, group in block.groupby("backbone", sort=False):
        wide = group.pivot_table(index="patient_id", columns="method", values="value")
        if {reference, comparator} <= set(wide.columns):
            diff = wide[reference] - wide[comparator]
            if diff.notna().any():
                out[backbone] = diff if better else -diff
    return pd.DataFrame(out).dropna()


def _sign(x: float) -> str:
    return "n/a" if pd.isna(x) else "+" if x > 0 else "-" if x < 0 else "0"


def backbone_interaction(
    patient_scores: pd.DataFrame,
    reference: str = "gradnorm",
    comparator: str = "ew",
    targets: Sequence[str] = ("wound", "tissue_mean"),
    metric: str = "dice",
) -> pd.DataFrame:
    """The method x backbone interaction of ``reference`` against ``comparator``, per target.

    ``patient_scores``: :func:`~wing.statistics.paired.patient_level` scores. Per target, the
    oriented patient-level differences (positive favours ``reference``) on the patients common
    to every backbone that scored both methods; a repeated-measures ANOVA of the difference over
    backbones (:func:`rm_anova`, Holm-corrected over the assessed targets) and Friedman's test
    (:func:`friedman`). One row per target and backbone with that backbone's mean difference
    over the common patients and its sign (``+``, ``-``, ``0``); the target's tests repeat on
    each of its rows. A target with fewer than 2 such backbones or 3 common patients reads
    ``not assessed: <reason>`` and has no test (a target with no such backbone has one row, with
    no backbone). Columns :data:`INTERACTION_COLUMNS`.
    """
    frame = patient_scores[patient_scores["metric"] == metric]
    better = higher_is_better(metric)
    rows = []
    for target in targets:
        block = frame[frame["target"] == target]
        diffs = _differences(block, reference, comparator, better)
        n_patients, n_backbones = diffs.shape
        f = ddof1 = ddof2 = p = q = p_friedman = np.nan
        if n_backbones < MIN_BACKBONES:
            status = (
                f"not assessed: {n_backbones} backbone(s) with both {reference} and "
                f"{comparator}; the interaction needs at least {MIN_BACKBONES}"
            )
        elif n_patients < MIN_PATIENTS:
            status = (
                f"not assessed: {n_patients} patient(s) common to every backbone; the "
                f"interaction needs at least {MIN_PATIENTS}"
            )
        else:
            status = ASSESSED
            values = diffs.to_numpy()
            f, ddof1, ddof2, p = rm_anova(values)
            q, p_friedman = friedman(values)
        common = {
            "target": target,
            "metric": metric,
            "reference": reference,
            "comparator": comparator,
            "n_backbones": n_backbones,
            "n_patients": n_patients,
            "status": status,
            "F": f,
            "ddof1": ddof1,
            "ddof2": ddof2,
            "p_anova": p,
            "friedman_statistic": q,
            "p_friedman": p_friedman,
        }
        means = diffs.mean() if n_patients else pd.Series(np.nan, index=diffs.columns)
        for backbone, mean in means.items():
            rows.append({**common, "backbone": backbone, "mean_difference": float(mean)})
        if means.empty:
            rows.append({**common, "backbone": np.nan, "mean_difference": np.nan})
    out = pd.DataFrame(
        rows, columns=[c for c in INTERACTION_COLUMNS if c not in ("p_anova_holm", "sign")]
    )
    first = ~out.duplicated("target")
    adjusted = pd.Series(
        holm(out.loc[first, "p_anova"].astype(float)), index=out.loc[first, "target"]
    )
    out.insert(out.columns.get_loc("p_anova") + 1, "p_anova_holm", out["target"].map(adjusted))
    out["sign"] = out["mean_difference"].map(_sign)
    return out.astype({"n_backbones": int, "n_patients": int, "ddof1": "Int64", "ddof2": "Int64"})
