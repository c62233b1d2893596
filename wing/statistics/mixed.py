"""Secondary analysis: a linear mixed model of every per-image score, every seed (issue 7, §2).

The primary comparison (:func:`wing.statistics.paired.compare_to_reference`) averages seeds and
images into one score per patient. This secondary analysis keeps every image and every seed, so
that the variance of training across seeds enters the inference, and models the correlation
that averaging removed: per backbone and target,

    value_{m,p,i,s} = beta_0 + beta_m + u_p + v_{p,i} + e_{m,p,i,s},

with method m as fixed effect (treatment coding, the reference method as baseline), a random
intercept u_p per patient, a variance component v_{p,i} per image within its patient, and
residual e (which holds the seed-to-seed variation). Fitted by REML with ``statsmodels``
``MixedLM`` (Laird & Ware 1982; Lindstrom & Bates 1988): ``groups=patient_id``,
``vc_formula={"image": "0 + C(sample_id)"}``. Wald z-tests of each comparator's coefficient are
Holm-corrected (Holm 1979) over the whole returned family. Estimates are oriented like the
paired table: positive favours the reference (reference minus method; method minus reference
for HD95, where lower is better).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf
from scipy import stats

from wing.statistics.paired import higher_is_better, holm, method_order, select_scores

MIXED_COLUMNS = [
    "backbone",
    "target",
    "metric",
    "higher_is_better",
    "reference",
    "method",
    "status",
    "estimate",
    "se",
    "z",
    "p",
    "p_holm",
    "ci_low",
    "ci_high",
    "n_patients",
    "n_images",
    "n_seeds",
    "n_observations",
    "converged",
    "warnings",
]
ESTIMATED = "estimated"


def _fit(data: pd.DataFrame, comparators: list[str]):
    """REML fit of value ~ method dummies, random intercept per patient, image component.

    The design uses indicator columns ``m0, m1, ...`` (one per comparator) rather than the
    method names, so any method name is safe in the formula. Returns (result, warning texts).
    """
    dummies = {f"m{k}": (data["method"] == m).astype(float) for k, m in enumerate(comparators)}
    frame = data.assign(**dummies)
    formula = "value ~ 1" + "".join(f" + {name}" for name in dummies)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = smf.mixedlm(
            formula,
            frame,
            groups="patient_id",
            re_formula="1",
            vc_formula={"image": "0 + C(sample_id)"},
        )
        result = model.fit(reml=True)
    texts = list(dict.fromkeys(str(w.message) for w in caught))
    return result, texts


def _not_estimable(base: dict, comparators: list[str], reason: str) -> list[dict]:
    return [
        {**base, "method": m, "status": f"not estimable: {reason}", "converged": False}
        for m in comparators
    ]


def mixed_model_comparison(
    scores: pd.DataFrame,
    reference: str = "gradnorm",
    metric: str = "dice",
    targets: Sequence[str] | None = ("wound", "tissue_mean"),
    checkpoint: str = "best",
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Mixed-model estimate of the reference's advantage over every other method.

    Per backbone and target (all targets if ``targets`` is None), on every image and seed with a
    finite value: the REML fit of this module's model. Per comparator: ``estimate`` (oriented,
    positive favours the reference), ``se``, ``z``, ``p`` (two-sided Wald), ``p_holm`` (Holm
    over the returned family), Wald ``ci_low, ci_high`` at ``confidence``, the counts behind it,
    ``converged`` (the optimiser's flag and no convergence warning) and ``warnings`` (the
    statsmodels warnings raised by the fit, joined by " | "). A fit that cannot be made (one
    patient, one method, or a numerical failure) gives rows with ``status`` "not estimable:
    <reason>" and no estimate. Columns :data:`MIXED_COLUMNS`.
    """
    frame = select_scores(scores, metric, checkpoint)
    missing = [c for c in ("patient_id",) if c not in frame.columns]
    if missing:
        raise ValueError(f"score table lacks columns {missing}")
    frame = frame[np.isfinite(frame["value"].astype(float))]
    if targets is not None:
        frame = frame[frame["target"].isin(list(targets))]
    better = higher_is_better(metric)
    sign = -1.0 if better else 1.0  # coefficients are method minus reference
    z_crit = stats.norm.ppf(0.5 + confidence / 2.0)
    rows = []
    for (backbone, target), data in frame.groupby(["backbone", "target"], sort=False):
        comparators = method_order(m for m in data["method"].unique() if m != reference)
        base = {
            "backbone": backbone,
            "target": target,
            "metric": metric,
            "higher_is_better": better,
            "reference": reference,
            "n_patients": data["patient_id"].nunique(),
            "n_images": data["sample_id"].nunique(),
            "n_seeds": data["seed"].nunique(),
            "n_observations": len(data),
        }
        if reference not in set(data["method"]) or not comparators:
            continue
        if base["n_patients"] < 2:
            rows += _not_estimable(base, comparators, "fewer than 2 patients")
            continue
        try:
            result, texts = _fit(data, comparators)
        except (ValueError, np.linalg.LinAlgError) as error:
            rows += _not_estimable(base, comparators, f"fit failed ({error})")
            continue
        converged = bool(result.converged) and not any("converge" in t.lower() for t in texts)
        for k, method in enumerate(comparators):
            coef, se = float(result.params[f"m{k}"]), float(result.bse[f"m{k}"])
            estimate = sign * coef
            if not (np.isfinite(se) and se > 0):
                singular = _not_estimable(base, [method], "singular fit")[0]
                rows.append({**singular, "warnings": " | ".join(texts)})
                continue
            rows.append(
                {
                    **base,
                    "method": method,
                    "status": ESTIMATED,
                    "estimate": estimate,
                    "se": se,
                    "z": estimate / se,
                    "p": float(result.pvalues[f"m{k}"]),
                    "ci_low": estimate - z_crit * se,
                    "ci_high": estimate + z_crit * se,
                    "converged": converged,
                    "warnings": " | ".join(texts),
                }
            )
    out = pd.DataFrame(rows, columns=MIXED_COLUMNS)
    out["p_holm"] = holm(out["p"].astype(float))
    out["warnings"] = out["warnings"].fillna("")
    return out.astype({"converged": bool})
