"""Per-image paired comparisons of training methods, summaries and Delta-MTL.

Input everywhere is the tidy per-image score table with (at least) the columns
``sample_id, method, backbone, seed, target, metric, value``. Every image is first averaged over
seeds (per sample_id, method, backbone, target and metric), so that the unit of analysis is
the test image and methods are paired on it.

Methods used:

* Bootstrap: bias-corrected and accelerated (BCa) intervals (Efron 1987; Efron &
  Tibshirani 1993) from ``scipy.stats.bootstrap``, resampling images (for a paired difference,
  resampling the per-image differences is exactly paired resampling). BCa falls back to the
  percentile interval if its acceleration is undefined; degenerate (constant) samples get the
  point interval ``(x, x)``.
* Wilcoxon signed-rank test (Wilcoxon 1945), two-sided, zero differences dropped (``"wilcox"``).
* Paired t-test (Student 1908) via ``scipy.stats.ttest_rel``.
* Effect sizes: Cohen's d_z = mean(d) / sd(d) (Cohen 1988) and the matched-pairs rank-biserial
  correlation (Kerby 2014; computed by ``pingouin.wilcoxon``).
* Holm's step-down correction (Holm 1979) over the whole family of comparisons returned,
  separately for the Wilcoxon and the t-test p-values (``statsmodels`` ``multipletests``).
* Delta-MTL (Maninis et al. 2019): mean relative gain over the single-task baseline.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.multitest import multipletests

SCORE_KEYS = ["backbone", "method", "target", "metric"]
COMPARISON_COLUMNS = [
    "backbone",
    "target",
    "metric",
    "reference",
    "method",
    "n",
    "mean_reference",
    "mean_method",
    "mean_difference",
    "ci_low",
    "ci_high",
    "wilcoxon_statistic",
    "wilcoxon_p",
    "wilcoxon_p_holm",
    "ttest_statistic",
    "ttest_p",
    "ttest_p_holm",
    "cohens_dz",
    "rank_biserial",
]
SUMMARY_COLUMNS = [
    "backbone",
    "method",
    "target",
    "metric",
    "n_images",
    "mean",
    "ci_low",
    "ci_high",
    "n_seeds",
    "seed_mean",
    "seed_sd",
]
METHOD_ORDER = ("stl", "ew", "gradnorm")


def _bootstrap_ci(x: np.ndarray, n_boot: int, seed: int, confidence: float) -> tuple[float, float]:
    """BCa bootstrap interval of the mean of ``x`` (Efron 1987); percentile if BCa fails."""
    if x.size == 0:
        return np.nan, np.nan
    if x.size == 1 or np.ptp(x) == 0:
        return float(x[0]), float(x[0])
    for method in ("BCa", "percentile"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = stats.bootstrap(
                (x,),
                np.mean,
                n_resamples=n_boot,
                confidence_level=confidence,
                method=method,
                vectorized=True,
                rng=np.random.default_rng(seed),
            )
        low, high = res.confidence_interval
        if np.isfinite(low) and np.isfinite(high):
            break
    return float(low), float(high)


def bootstrap_mean_ci(
    values: Sequence[float] | np.ndarray,
    n_boot: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[float, float, float]:
    """Mean of ``values`` (NaN dropped) and its seeded BCa bootstrap interval: (mean, low, high)."""
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    mean = float(x.mean()) if x.size else np.nan
    low, high = _bootstrap_ci(x, n_boot, seed, confidence)
    return mean, low, high


def _wilcoxon(d: np.ndarray) -> tuple[float, float]:
    """Two-sided Wilcoxon signed-rank test of differences (Wilcoxon 1945); p = 1 if all zero."""
    if d.size == 0:
        return np.nan, np.nan
    if np.all(d == 0):
        return 0.0, 1.0
    res = stats.wilcoxon(d, alternative="two-sided", zero_method="wilcox")
    return float(res.statistic), float(res.pvalue)


def _ttest(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Paired t-test; all-zero differences give (0, 1), fewer than two pairs give NaN."""
    d = a - b
    if d.size < 2:
        return np.nan, np.nan
    if np.all(d == 0):
        return 0.0, 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = stats.ttest_rel(a, b)
    return float(res.statistic), float(res.pvalue)


def cohens_dz(d: np.ndarray) -> float:
    """Cohen's d_z = mean(d) / sd(d, ddof=1) of paired differences (Cohen 1988).

    0 if all differences are zero, +-inf if they are a nonzero constant, NaN if n < 2.
    """
    d = np.asarray(d, dtype=float)
    if d.size < 2:
        return np.nan
    mean, sd = d.mean(), d.std(ddof=1)
    if sd == 0:
        return 0.0 if mean == 0 else float(np.copysign(np.inf, mean))
    return float(mean / sd)


def rank_biserial(a: np.ndarray, b: np.ndarray) -> float:
    """Matched-pairs rank-biserial correlation of a - b (Kerby 2014), via ``pingouin.wilcoxon``.

    (R+ - R-) / (R+ + R-) over the ranks of the nonzero |differences|: +1 when every nonzero
    difference favours ``a``. 0 when all differences are zero, NaN without pairs.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.size == 0:
        return np.nan
    if np.all(a == b):
        return 0.0
    import pingouin as pg  # deferred: pingouin is slow to import

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(pg.wilcoxon(a, b, correction=False)["RBC"].iloc[0])


def paired_comparison(
    a: np.ndarray | Sequence[float],
    b: np.ndarray | Sequence[float],
    n_boot: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict[str, float]:
    """Compare paired samples ``a`` and ``b`` (differences are a - b); NaN pairs are dropped.

    Returns ``n, mean_a, mean_b, mean_difference, ci_low, ci_high`` (seeded BCa bootstrap of the
    mean difference over resampled pairs, Efron 1987), ``wilcoxon_statistic, wilcoxon_p``
    (two-sided signed-rank test, Wilcoxon 1945; p = 1 if all differences are zero),
    ``ttest_statistic, ttest_p`` (``scipy.stats.ttest_rel``), ``cohens_dz`` and
    ``rank_biserial`` (Kerby 2014).
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"a and b must be 1-D of equal length, got {a.shape} and {b.shape}")
    keep = ~(np.isnan(a) | np.isnan(b))
    a, b = a[keep], b[keep]
    d = a - b
    ci_low, ci_high = _bootstrap_ci(d, n_boot, seed, confidence)
    w_stat, w_p = _wilcoxon(d)
    t_stat, t_p = _ttest(a, b)
    return {
        "n": int(d.size),
        "mean_a": float(a.mean()) if d.size else np.nan,
        "mean_b": float(b.mean()) if d.size else np.nan,
        "mean_difference": float(d.mean()) if d.size else np.nan,
        "ci_low": ci_low,
        "ci_high": ci_high,
        "wilcoxon_statistic": w_stat,
        "wilcoxon_p": w_p,
        "ttest_statistic": t_stat,
        "ttest_p": t_p,
        "cohens_dz": cohens_dz(d),
        "rank_biserial": rank_biserial(a, b),
    }


def holm(pvalues: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm (1979) step-down adjusted p-values; NaN entries stay NaN and are not counted."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    if ok.any():
        out[ok] = multipletests(p[ok], method="holm")[1]
    return out


def seed_averaged(scores: pd.DataFrame, metric: str | None = None) -> pd.DataFrame:
    """Per-image values averaged over seeds (NaN seeds skipped).

    Columns ``backbone, method, target, metric, sample_id, value``; restricted to ``metric``
    when given.
    """
    _require(scores, [*SCORE_KEYS, "sample_id", "seed", "value"])
    frame = scores if metric is None else scores[scores["metric"] == metric]
    keys = [*SCORE_KEYS, "sample_id"]
    return frame.groupby(keys, sort=False, dropna=False)["value"].mean().reset_index()


def compare_to_reference(
    scores: pd.DataFrame,
    reference: str = "gradnorm",
    metric: str = "dice",
    targets: Sequence[str] | None = None,
    n_boot: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """Paired per-image comparison of ``reference`` against every other method.

    Per backbone, target and other method: each image is averaged over seeds, images are paired
    on ``sample_id`` (images missing for either method, or NaN, are dropped) and
    :func:`paired_comparison` is run with a = reference, b = method (positive differences favour
    the reference). Wilcoxon and t-test p-values are each Holm-corrected (Holm 1979) over all rows
    of the returned table. Columns: :data:`COMPARISON_COLUMNS`.
    """
    avg = seed_averaged(scores, metric)
    if reference not in set(avg["method"]):
        raise ValueError(f"reference method {reference!r} not in the {metric!r} scores")
    if targets is not None:
        avg = avg[avg["target"].isin(list(targets))]
    rows = []
    for (backbone, target), group in avg.groupby(["backbone", "target"], sort=False):
        wide = group.pivot(index="sample_id", columns="method", values="value")
        if reference not in wide:
            continue
        for method in method_order(m for m in wide.columns if m != reference):
            res = paired_comparison(
                wide[reference].to_numpy(), wide[method].to_numpy(), n_boot=n_boot, seed=seed
            )
            rows.append(
                {
                    "backbone": backbone,
                    "target": target,
                    "metric": metric,
                    "reference": reference,
                    "method": method,
                    "n": res["n"],
                    "mean_reference": res["mean_a"],
                    "mean_method": res["mean_b"],
                    **{k: res[k] for k in ("mean_difference", "ci_low", "ci_high")},
                    "wilcoxon_statistic": res["wilcoxon_statistic"],
                    "wilcoxon_p": res["wilcoxon_p"],
                    "ttest_statistic": res["ttest_statistic"],
                    "ttest_p": res["ttest_p"],
                    "cohens_dz": res["cohens_dz"],
                    "rank_biserial": res["rank_biserial"],
                }
            )
    out = pd.DataFrame(rows, columns=[c for c in COMPARISON_COLUMNS if not c.endswith("_holm")])
    out.insert(out.columns.get_loc("wilcoxon_p") + 1, "wilcoxon_p_holm", holm(out["wilcoxon_p"]))
    out.insert(out.columns.get_loc("ttest_p") + 1, "ttest_p_holm", holm(out["ttest_p"]))
    return out.astype({"n": int})


def summary_table(
    scores: pd.DataFrame,
    metric: str = "dice",
    n_boot: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Per backbone, method and target: image-level mean with bootstrap CI, and seed spread.

    ``mean, ci_low, ci_high, n_images``: over images of the seed-averaged per-image values (BCa
    bootstrap, Efron 1987). ``seed_mean, seed_sd, n_seeds``: mean and sample sd (ddof=1) across
    seeds of each seed's mean over images. Columns: :data:`SUMMARY_COLUMNS`.
    """
    _require(scores, [*SCORE_KEYS, "sample_id", "seed", "value"])
    frame = scores[scores["metric"] == metric]
    rows = []
    for key, group in seed_averaged(frame).groupby(SCORE_KEYS, sort=False):
        values = group["value"].to_numpy(dtype=float)
        mean, low, high = bootstrap_mean_ci(values, n_boot, seed, confidence)
        n_images = int(np.sum(~np.isnan(values)))
        row = dict(zip(SCORE_KEYS, key, strict=True))
        rows.append({**row, "n_images": n_images, "mean": mean, "ci_low": low, "ci_high": high})
    images = pd.DataFrame(rows, columns=[*SCORE_KEYS, "n_images", "mean", "ci_low", "ci_high"])
    per_seed = frame.groupby([*SCORE_KEYS, "seed"], sort=False)["value"].mean().dropna()
    seeds = per_seed.groupby(level=SCORE_KEYS, sort=False).agg(
        n_seeds="count", seed_mean="mean", seed_sd="std"
    )
    out = images.merge(seeds.reset_index(), on=SCORE_KEYS, how="left")
    out["n_seeds"] = out["n_seeds"].fillna(0).astype(int)
    return _order_methods(out[SUMMARY_COLUMNS])


def delta_mtl(
    scores: pd.DataFrame,
    stl_method: str = "stl",
    metric: str = "dice",
    targets: Sequence[str] = ("wound", "tissue_mean"),
) -> pd.DataFrame:
    """Delta-MTL (Maninis et al. 2019) of every method against the single-task baseline.

    Delta_m = (1/T) sum_t 100 * (M_m,t - M_stl,t) / M_stl,t over ``targets`` (all higher-is-better
    here, so no sign flips); M is the mean over images of the seed-averaged per-image value.
    Positive is better than single-task. Returns per backbone and method (the baseline included,
    at 0): ``backbone, method, metric, delta_mtl`` and ``delta_<target>`` for each target.
    """
    avg = seed_averaged(scores, metric)
    avg = avg[avg["target"].isin(list(targets))]
    keys = ["backbone", "method", "target"]
    means = avg.groupby(keys, sort=False)["value"].mean().unstack("target")
    missing = [t for t in targets if t not in means.columns]
    if missing:
        raise ValueError(f"targets {missing} not in the {metric!r} scores")
    means = means[list(targets)]
    rows = []
    for backbone, block in means.groupby(level="backbone", sort=False):
        block = block.droplevel("backbone")
        if stl_method not in block.index:
            raise ValueError(f"no {stl_method!r} scores for backbone {backbone!r}")
        base = block.loc[stl_method]
        rel = 100.0 * (block - base) / base
        for method, row in rel.iterrows():
            rows.append(
                {
                    "backbone": backbone,
                    "method": method,
                    "metric": metric,
                    "delta_mtl": float(row.mean()),
                    **{f"delta_{t}": float(row[t]) for t in targets},
                }
            )
    return _order_methods(pd.DataFrame(rows))


def method_order(methods: Iterable[str]) -> list[str]:
    """Known methods in the order stl, ew, gradnorm; others after, alphabetically."""
    methods = list(methods)
    known = [m for m in METHOD_ORDER if m in methods]
    return known + sorted(m for m in methods if m not in METHOD_ORDER)


def _order_methods(frame: pd.DataFrame) -> pd.DataFrame:
    """Sort a table by backbone, then method in :func:`method_order`, keeping other order."""
    if frame.empty:
        return frame.reset_index(drop=True)
    rank = {m: i for i, m in enumerate(method_order(frame["method"].unique()))}
    key = frame["method"].map(rank)
    order = pd.DataFrame({"b": frame["backbone"], "m": key}).sort_values(["b", "m"], kind="stable")
    return frame.loc[order.index].reset_index(drop=True)


def _require(frame: pd.DataFrame, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"score table lacks columns {missing}")
