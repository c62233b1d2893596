"""Agreement of each method's per-visit measures with the reference masks' (issue 10).

Per method and measure, over the visits measured by both (paired on ``sample_id``):

* Bland-Altman (Bland & Altman 1986, Lancet i:307): bias = mean of the differences
  (method minus reference) and 95% limits of agreement = bias ± 1.96 SD of the differences
  (ddof=1), computed here. The SD is that of all visits' differences; with several visits per
  patient it ignores the clustering, which Bland & Altman (2007) note narrows the limits a
  little when patients differ; the patient bootstrap intervals below do account for it.
* ICC(A,1) (McGraw & Wong 1996, Psychol Methods 1:30; Shrout & Fleiss' ICC(2,1)): two-way,
  absolute agreement, single measurement, from ``pingouin.intraclass_corr``. This
  compendium's choice: absolute agreement because a method is meant to replace the reference
  measurement, so a systematic bias is disagreement (consistency forms such as ICC(C,1)
  forgive it); single measurement because one method's value per visit is what would be used.
  Visits are the targets and {method, reference} the raters.
* Pearson's r and Spearman's rho of the method's against the reference's values.
* Mean absolute error, mean |method - reference|.

Scales (``scale``): wound area is compared as ``log`` of the area in pixels (natural log;
areas below one pixel are floored at one pixel, so a wound predicted absent stays finite).
Area errors grow with the wound, so Bland & Altman (1999) recommend the log scale: a bias b
means the method's areas are exp(b) times the reference's (e.g. b = 0.1 is 10.5% larger),
the MAE is the mean absolute log ratio, and the pixel spacing cancels (both measure one
photograph). Tissue shares (``fraction``, 0..1) are compared as they are: a bias of 0.05 is
5 percentage points of the wound bed.

Intervals: every statistic has a percentile bootstrap interval from resampling patients, not
visits (Davison & Hinkley 1997, the cluster bootstrap): a patient's visits are correlated, so
the patient is the unit, as in :mod:`wing.statistics.paired`. Percentile rather than BCa
because correlations and ICCs of a few clusters have unstable jackknife accelerations; the
ICC's bootstrap replicates use the same ICC(A,1) formula in NumPy (checked against pingouin
in the tests), since calling pingouin thousands of times is slow.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from wing.longitudinal.measures import REFERENCE, require_columns

AREA_FLOOR_PX = 1.0
LOG_AREA = "log_wound_area"
AGREEMENT_COLUMNS = [
    "method",
    "reference",
    "measure",
    "scale",
    "n_images",
    "n_patients",
    "bias",
    "bias_ci_low",
    "bias_ci_high",
    "loa_low",
    "loa_low_ci_low",
    "loa_low_ci_high",
    "loa_high",
    "loa_high_ci_low",
    "loa_high_ci_high",
    "icc",
    "icc_ci_low",
    "icc_ci_high",
    "pearson_r",
    "pearson_ci_low",
    "pearson_ci_high",
    "spearman_rho",
    "spearman_ci_low",
    "spearman_ci_high",
    "mae",
    "mae_ci_low",
    "mae_ci_high",
]
_STATISTICS = ("bias", "loa_low", "loa_high", "icc", "pearson_r", "spearman_rho", "mae")
_CI_NAMES = {"pearson_r": "pearson", "spearman_rho": "spearman"}


def log_area(area_px: pd.Series | np.ndarray) -> np.ndarray:
    """Natural log of wound areas in pixels, floored at :data:`AREA_FLOOR_PX` (NaN stays NaN)."""
    return np.log(np.maximum(np.asarray(area_px, dtype=float), AREA_FLOOR_PX))


def _weights(weights: np.ndarray | None, n: int) -> np.ndarray:
    """Frequency weights as a (replicates, n) array: ones for the sample itself."""
    return np.ones((1, n)) if weights is None else np.atleast_2d(np.asarray(weights, float))


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, NaN where the denominator is not positive."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(
            denominator > 0, numerator / np.where(denominator > 0, denominator, 1), np.nan
        )


def _weighted_correlation(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Pearson correlation per row of ``w`` (x, y of shape (n,) or (replicates, n)); NaN
    where either variable is constant (up to rounding)."""
    total = w.sum(axis=1)
    spreads, centred = [], []
    for v in (x, y):
        dv = v - _ratio((w * v).sum(axis=1), total)[:, None]
        sd = np.sqrt(_ratio((w * dv**2).sum(axis=1), total))
        scale = max(float(np.max(np.abs(v), initial=0.0)), np.finfo(float).tiny)
        spreads.append(np.where(sd > 1e-9 * scale, sd, 0.0))
        centred.append(dv)
    covariance = _ratio((w * centred[0] * centred[1]).sum(axis=1), total)
    return np.clip(_ratio(covariance, spreads[0] * spreads[1]), -1.0, 1.0)


def _weighted_ranks(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Mid-ranks of ``x`` in the sample that repeats value i ``w[:, i]`` times (ties share
    the mean of their ranks, as ``scipy.stats.rankdata``), per row of ``w``."""
    values, index = np.unique(x, return_inverse=True)
    per_value = np.zeros((w.shape[0], values.size))
    np.add.at(per_value.T, index, w.T)
    below = np.cumsum(per_value, axis=1) - per_value
    return (below + (per_value + 1.0) / 2.0)[:, index]


def icc_absolute_agreement(
    method: np.ndarray, reference: np.ndarray, weights: np.ndarray | None = None
) -> float | np.ndarray:
    """ICC(A,1) of two raters (McGraw & Wong 1996, case 2A; ``pingouin``'s ``ICC(A,1)``).

    (MSR - MSE) / (MSR + (k - 1) MSE + k (MSC - MSE) / n) from the two-way ANOVA of n targets
    by k = 2 raters; per row of frequency ``weights`` (target i counted ``weights[:, i]``
    times; default once). NaN where undefined (fewer than two targets, no variation).
    """
    x, y = np.asarray(method, float), np.asarray(reference, float)
    w = _weights(weights, x.size)
    n = w.sum(axis=1)
    grand = _ratio((w * (x + y)).sum(axis=1), 2 * n)[:, None]
    ss_rows = 2 * (w * ((x + y) / 2 - grand) ** 2).sum(axis=1)
    ss_columns = n * ((_ratio((w * x).sum(axis=1), n) - grand[:, 0]) ** 2) + n * (
        (_ratio((w * y).sum(axis=1), n) - grand[:, 0]) ** 2
    )
    ss_error = (w * ((x - grand) ** 2 + (y - grand) ** 2)).sum(axis=1) - ss_rows - ss_columns
    msr = _ratio(ss_rows, n - 1)
    mse = _ratio(np.maximum(ss_error, 0.0), n - 1)
    denominator = msr + mse + 2 * (ss_columns - mse) / np.where(n > 0, n, np.nan)
    icc = _ratio(msr - mse, denominator)
    return float(icc[0]) if weights is None else icc


def pingouin_icc(method: np.ndarray, reference: np.ndarray) -> float:
    """ICC(A,1) of ``pingouin.intraclass_corr`` (visits as targets, the two as raters)."""
    if len(method) < 2:
        return np.nan
    import pingouin as pg  # deferred: pingouin is slow to import

    n = len(method)
    long = pd.DataFrame(
        {
            "visit": np.tile(np.arange(n), 2),
            "rater": np.repeat(["method", "reference"], n),
            "value": np.r_[method, reference].astype(float),
        }
    )
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        table = pg.intraclass_corr(long, targets="visit", raters="rater", ratings="value")
    return float(table.set_index("Type").loc["ICC(A,1)", "ICC"])


def agreement_statistics(
    method: np.ndarray, reference: np.ndarray, weights: np.ndarray | None = None
) -> np.ndarray:
    """Bias, lower and upper 95% limit of agreement, ICC(A,1), Pearson r, Spearman rho and
    MAE of paired values (differences are method minus reference), in that order.

    ``weights`` (replicates, n) are frequency weights: row r gives the statistics of the
    sample that holds pair i ``weights[r, i]`` times (how the patient bootstrap resamples);
    returns (replicates, 7), or (7,) without weights.
    """
    x, y = np.asarray(method, float), np.asarray(reference, float)
    w = _weights(weights, x.size)
    d = x - y
    n = w.sum(axis=1)
    bias = _ratio((w * d).sum(axis=1), n)
    sd = np.sqrt(_ratio((w * (d - bias[:, None]) ** 2).sum(axis=1), n - 1))
    out = np.column_stack(
        [
            bias,
            bias - 1.96 * sd,
            bias + 1.96 * sd,
            icc_absolute_agreement(x, y, w),
            _weighted_correlation(x, y, w),
            _weighted_correlation(_weighted_ranks(x, w), _weighted_ranks(y, w), w),
            _ratio((w * np.abs(d)).sum(axis=1), n),
        ]
    )
    return out[0] if weights is None else out


def cluster_bootstrap(
    clusters: np.ndarray,
    statistic: Callable[[np.ndarray], np.ndarray],
    n_boot: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap interval of ``statistic`` resampling clusters (patients).

    ``clusters[i]`` is the cluster of row i. Each replicate draws as many clusters as there
    are with replacement; a row then counts as often as its cluster was drawn, and
    ``statistic`` receives these counts as (n_boot, rows) frequency weights and returns
    (n_boot, k). Returns (low, high) of length k; NaN with fewer than two clusters.
    """
    _, index = np.unique(np.asarray(clusters), return_inverse=True)
    n = int(index.max()) + 1 if index.size else 0
    width = statistic(np.ones((1, index.size))).shape[1]
    if n < 2:
        return np.full(width, np.nan), np.full(width, np.nan)
    draws = np.random.default_rng(seed).integers(0, n, (n_boot, n))
    counts = np.zeros((n_boot, n))
    np.add.at(counts, (np.arange(n_boot)[:, None], draws), 1.0)
    replicates = statistic(counts[:, index])
    alpha = (1.0 - confidence) / 2.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN statistic stays NaN
        low, high = np.nanquantile(replicates, [alpha, 1.0 - alpha], axis=0)
    return low, high


def _paired_values(measures: pd.DataFrame, method: str, reference: str, measure: str):
    """(patient ids, method values, reference values) on the visits both measured."""
    column = "wound_area_px" if measure == LOG_AREA else measure
    wide = measures.pivot(index=["patient_id", "sample_id"], columns="source", values=column)
    pairs = wide[[method, reference]].dropna()
    values = pairs.to_numpy(dtype=float)
    if measure == LOG_AREA:
        values = log_area(values)
    return pairs.index.get_level_values("patient_id").to_numpy(), values[:, 0], values[:, 1]


def agreement_row(
    patients: np.ndarray,
    method: np.ndarray,
    reference: np.ndarray,
    n_boot: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict[str, float]:
    """Every statistic of :func:`agreement_statistics` and its patient bootstrap interval.

    The ICC point estimate is pingouin's; ``n_images`` and ``n_patients`` count the pairs.
    """
    point = agreement_statistics(method, reference)
    point[3] = pingouin_icc(method, reference)
    low, high = cluster_bootstrap(
        patients,
        lambda weights: agreement_statistics(method, reference, weights),
        n_boot,
        seed,
        confidence,
    )
    out: dict[str, float] = {"n_images": len(method), "n_patients": len(set(patients))}
    for i, name in enumerate(_STATISTICS):
        prefix = _CI_NAMES.get(name, name)
        out[name] = float(point[i])
        out[f"{prefix}_ci_low"], out[f"{prefix}_ci_high"] = float(low[i]), float(high[i])
    return out


def agreement_table(
    measures: pd.DataFrame,
    reference: str = REFERENCE,
    methods: Sequence[str] | None = None,
    n_boot: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Agreement of each method's per-visit measures with ``reference``'s (module docstring).

    ``measures``: a :func:`~wing.longitudinal.measures.measure_table` of several sources, one
    row per (source, sample_id). ``methods``: the sources compared (default: every source but
    ``reference``). Measures: log wound area and each ``fraction_<class>``. Columns
    :data:`AGREEMENT_COLUMNS`.
    """
    require_columns(measures, ["sample_id", "patient_id", "source", "wound_area_px"], "measures")
    sources = list(dict.fromkeys(measures["source"]))
    if reference not in sources:
        raise ValueError(f"no {reference!r} measures to compare with (sources: {sources})")
    if measures.duplicated(["source", "sample_id"]).any():
        raise ValueError("measures hold one source's visit twice; average seeds first")
    methods = [s for s in sources if s != reference] if methods is None else list(methods)
    shares = [c for c in measures.columns if c.startswith("fraction_")]
    rows = []
    for method in methods:
        if method not in sources:
            raise ValueError(f"no measures of {method!r} (sources: {sources})")
        for measure in [LOG_AREA, *shares]:
            patients, x, y = _paired_values(measures, method, reference, measure)
            rows.append(
                {
                    "method": method,
                    "reference": reference,
                    "measure": measure,
                    "scale": "log" if measure == LOG_AREA else "fraction",
                    **agreement_row(patients, x, y, n_boot, seed, confidence),
                }
            )
    return pd.DataFrame(rows, columns=AGREEMENT_COLUMNS)
