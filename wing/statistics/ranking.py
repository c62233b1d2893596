"""Ranking all methods at once: Friedman test, post-hoc pairs and average ranks (issue 7, §2).

With more than two methods the field compares them on their ranks over independent units
(Demšar 2006): the Friedman test (Friedman 1937) on a patients x methods table of patient-level
scores (:func:`wing.statistics.paired.patient_level`), then a post-hoc test of every pair --
Nemenyi's (Nemenyi 1963; family-wise by construction) or Conover's (Conover & Iman 1979; here
with Holm's correction) -- from ``scikit-posthocs`` (Terpilowski 2019), and the average rank of
each method, drawn as a critical-difference diagram (:mod:`wing.figures.ranking`).

Only complete blocks enter: a patient is kept if every method has a score for it. Rank 1 is the
best method on a patient (highest Dice/IoU/precision/recall, lowest HD95); ties share the mean
rank. Friedman's statistic and the post-hoc p-values do not depend on that orientation.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import scikit_posthocs as sp
from scipy import stats

from wing.statistics.paired import higher_is_better, method_order

POSTHOCS = ("nemenyi", "conover")
FRIEDMAN_COLUMNS = [
    "backbone",
    "target",
    "metric",
    "status",
    "n_methods",
    "n_patients",
    "methods",
    "statistic",
    "p",
]
POSTHOC_COLUMNS = ["backbone", "target", "metric", "posthoc", "method_a", "method_b", "p"]
RANK_COLUMNS = ["backbone", "target", "metric", "method", "average_rank", "n_patients"]
ASSESSED = "assessed"


def _blocks(patient_scores: pd.DataFrame, target: str, metric: str) -> dict[object, pd.DataFrame]:
    """Per backbone: the complete patients x methods table (methods in the usual order)."""
    rows = patient_scores[
        (patient_scores["target"] == target) & (patient_scores["metric"] == metric)
    ]
    out = {}
    for backbone, block in rows.groupby("backbone", sort=False):
        wide = block.pivot_table(index="patient_id", columns="method", values="value")
        out[backbone] = wide[method_order(wide.columns)].dropna()
    return out


def _assessable(wide: pd.DataFrame) -> str:
    if wide.shape[1] < 3:
        return f"not assessed: {wide.shape[1]} method(s); Friedman needs at least 3"
    if wide.shape[0] < 2:
        return f"not assessed: {wide.shape[0]} complete patient(s); Friedman needs at least 2"
    return ASSESSED


def friedman_test(patient_scores: pd.DataFrame, target: str, metric: str) -> pd.DataFrame:
    """Friedman's test of equal methods on complete patients, one row per backbone.

    ``scipy.stats.friedmanchisquare`` over the patients x methods table of
    :func:`~wing.statistics.paired.patient_level` scores. With fewer than 3 methods or 2
    complete patients the row says ``not assessed: <reason>`` and has no statistic. Columns
    :data:`FRIEDMAN_COLUMNS` (``methods`` joined by ", ").
    """
    rows = []
    for backbone, wide in _blocks(patient_scores, target, metric).items():
        status = _assessable(wide)
        statistic = p = np.nan
        if status == ASSESSED:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                res = stats.friedmanchisquare(*(wide[m].to_numpy() for m in wide.columns))
            statistic, p = float(res.statistic), float(res.pvalue)
        rows.append(
            {
                "backbone": backbone,
                "target": target,
                "metric": metric,
                "status": status,
                "n_methods": wide.shape[1],
                "n_patients": wide.shape[0],
                "methods": ", ".join(wide.columns),
                "statistic": statistic,
                "p": p,
            }
        )
    return pd.DataFrame(rows, columns=FRIEDMAN_COLUMNS)


def posthoc_matrix(wide: pd.DataFrame, method: str = "nemenyi") -> pd.DataFrame:
    """Square p-value matrix (methods x methods) of the post-hoc test on a complete
    patients x methods table: Nemenyi, or Conover with Holm's correction."""
    if method not in POSTHOCS:
        raise ValueError(f"posthoc must be one of {POSTHOCS}, got {method!r}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if method == "nemenyi":
            return sp.posthoc_nemenyi_friedman(wide)
        return sp.posthoc_conover_friedman(wide, p_adjust="holm")


def posthoc(
    patient_scores: pd.DataFrame, target: str, metric: str, method: str = "nemenyi"
) -> pd.DataFrame:
    """Post-hoc p-value of every pair of methods after Friedman, per backbone (tidy).

    One row per unordered pair (``method_a`` before ``method_b`` in the usual method order);
    backbones where Friedman is not assessable give no rows. Columns :data:`POSTHOC_COLUMNS`.
    """
    rows = []
    for backbone, wide in _blocks(patient_scores, target, metric).items():
        if _assessable(wide) != ASSESSED:
            continue
        matrix = posthoc_matrix(wide, method)
        names = list(wide.columns)
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                rows.append(
                    {
                        "backbone": backbone,
                        "target": target,
                        "metric": metric,
                        "posthoc": method,
                        "method_a": a,
                        "method_b": b,
                        "p": float(matrix.loc[a, b]),
                    }
                )
    return pd.DataFrame(rows, columns=POSTHOC_COLUMNS)


def pvalue_matrix(pairs: pd.DataFrame, backbone: object | None = None) -> pd.DataFrame:
    """The symmetric methods x methods matrix (diagonal 1) of :func:`posthoc` rows of one
    backbone (the only one when None), as the critical-difference diagram wants it."""
    if backbone is not None:
        pairs = pairs[pairs["backbone"] == backbone]
    if pairs["backbone"].nunique() > 1:
        raise ValueError("pairs of several backbones: pass backbone")
    names = method_order(pd.unique(pairs[["method_a", "method_b"]].to_numpy().ravel()))
    matrix = pd.DataFrame(np.eye(len(names)), index=names, columns=names)
    for row in pairs.itertuples():
        matrix.loc[row.method_a, row.method_b] = matrix.loc[row.method_b, row.method_a] = row.p
    return matrix


def average_ranks(patient_scores: pd.DataFrame, target: str, metric: str) -> pd.DataFrame:
    """Average rank of each method over complete patients, per backbone (1 = best).

    Within a patient, methods are ranked best first (highest value, or lowest for HD95), ties
    sharing the mean rank. Columns :data:`RANK_COLUMNS`, best method first.
    """
    ascending = not higher_is_better(metric)
    rows = []
    for backbone, wide in _blocks(patient_scores, target, metric).items():
        if wide.empty:
            continue
        ranks = wide.rank(axis=1, ascending=ascending, method="average").mean(axis=0)
        for method, rank in ranks.sort_values(kind="stable").items():
            rows.append(
                {
                    "backbone": backbone,
                    "target": target,
                    "metric": metric,
                    "method": method,
                    "average_rank": float(rank),
                    "n_patients": len(wide),
                }
            )
    return pd.DataFrame(rows, columns=RANK_COLUMNS)
