"""Paired comparisons of training methods at the patient level, summaries and Delta-MTL.

Input everywhere is the tidy per-image score table written by the evaluate stage, with (at
least) the columns ``sample_id, patient_id, method, backbone, seed, target, metric, value`` and
optionally ``checkpoint`` (``best`` / ``last``; a table without it is all ``best``). Only one
checkpoint enters an analysis (``best``, the primary one, unless asked otherwise).

The unit of analysis is the patient (issue 7, section 2). Images of one patient are correlated
(the default test split is 6 patients x 4 visits), so 24 images are not 24 independent units.
Every image is first averaged over seeds, then images are averaged per patient, and methods are
paired on patients. Where a dataset has no patient identifiers, ``patient_id`` holds the
photograph group that the split already keeps together, and that group is the unit. The
per-image pairing (``unit="image"``) remains available for a secondary, clearly labelled table;
the mixed model of :mod:`wing.statistics.mixed` is the secondary analysis over every image and
seed.

Differences are always oriented so that a positive difference favours the reference method:
reference minus method for metrics where higher is better (Dice, IoU, precision, recall),
method minus reference for HD95, where lower is better (``higher_is_better`` says which).

Methods used:

* Bootstrap: bias-corrected and accelerated (BCa) intervals of the mean (Efron 1987; Efron &
  Tibshirani 1993) from ``scipy.stats.bootstrap``, resampling units (for a paired difference,
  resampling the per-unit differences is exactly paired resampling). BCa falls back to the
  percentile interval if its acceleration is undefined; degenerate (constant) samples get the
  point interval ``(x, x)``. The median difference gets a percentile bootstrap interval (BCa's
  jackknife acceleration is unreliable for the median of a few, often tied, values).
* Wilcoxon signed-rank test (Wilcoxon 1945), two-sided, zero differences dropped (``"wilcox"``).
* Paired t-test (Student 1908) via ``scipy.stats.ttest_rel``.
* Effect sizes: Cohen's d_z = mean(d) / sd(d) (Cohen 1988) and the matched-pairs rank-biserial
  correlation (Kerby 2014; computed by ``pingouin.wilcoxon``).
* Holm's step-down correction (Holm 1979) over the whole family of comparisons returned,
  separately for the Wilcoxon and the t-test p-values (``statsmodels`` ``multipletests``).
* Delta-MTL (Maninis et al. 2019): mean relative gain over the single-task baseline, with a
  percentile bootstrap interval from resampling patients.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.multitest import multipletests

# The level of every bootstrap interval of the comparison, whatever compare.significance is
# (the methods text and the manuscript state this value, not 1 - significance).
CONFIDENCE = 0.95
SCORE_KEYS = ["backbone", "method", "target", "metric"]
UNITS = ("patient", "image")
LOWER_IS_BETTER = frozenset({"hd95"})
COMPARISON_COLUMNS = [
    "backbone",
    "target",
    "metric",
    "higher_is_better",
    "unit",
    "reference",
    "method",
    "n",
    "n_patients",
    "n_images",
    "mean_reference",
    "mean_method",
    "mean_difference",
    "ci_low",
    "ci_high",
    "median_difference",
    "median_ci_low",
    "median_ci_high",
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
    "n_patients",
    "n_images",
    "mean",
    "ci_low",
    "ci_high",
    "n_seeds",
    "seed_mean",
    "seed_sd",
]
PATIENT_COLUMNS = [*SCORE_KEYS, "patient_id", "value", "n_images"]
METHOD_ORDER = ("stl", "ew", "gradnorm")


def higher_is_better(metric: str) -> bool:
    """True for overlap metrics (Dice, IoU, precision, recall); False for distances (HD95)."""
    return metric not in LOWER_IS_BETTER


def _bootstrap_ci(
    x: np.ndarray,
    n_boot: int,
    seed: int,
    confidence: float,
    statistic: Callable = np.mean,
    methods: Sequence[str] = ("BCa", "percentile"),
) -> tuple[float, float]:
    """Bootstrap interval of ``statistic(x)``: the first of ``methods`` that gives a finite one.

    BCa (Efron 1987) by default, falling back to the percentile interval; a constant sample
    gets the point interval, an empty one NaN.
    """
    if x.size == 0:
        return np.nan, np.nan
    if x.size == 1 or np.ptp(x) == 0:
        return float(x[0]), float(x[0])
    low = high = np.nan
    for method in methods:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = stats.bootstrap(
                (x,),
                statistic,
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
    confidence: float = CONFIDENCE,
) -> tuple[float, float, float]:
    """Mean of ``values`` (NaN dropped) and its seeded BCa bootstrap interval: (mean, low, high)."""
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    mean = float(x.mean()) if x.size else np.nan
    low, high = _bootstrap_ci(x, n_boot, seed, confidence)
    return mean, low, high


def bootstrap_median_ci(
    values: Sequence[float] | np.ndarray,
    n_boot: int = 2000,
    seed: int = 0,
    confidence: float = CONFIDENCE,
) -> tuple[float, float, float]:
    """Median of ``values`` (NaN dropped) and its seeded percentile bootstrap interval."""
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    median = float(np.median(x)) if x.size else np.nan
    low, high = _bootstrap_ci(x, n_boot, seed, confidence, np.median, ("percentile",))
    return median, low, high


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
    confidence: float = CONFIDENCE,
) -> dict[str, float]:
    """Compare paired samples ``a`` and ``b`` (differences are a - b); NaN pairs are dropped.

    Returns ``n, mean_a, mean_b, mean_difference, ci_low, ci_high`` (seeded BCa bootstrap of the
    mean difference over resampled pairs, Efron 1987), ``median_difference, median_ci_low,
    median_ci_high`` (percentile bootstrap of the median difference), ``wilcoxon_statistic,
    wilcoxon_p`` (two-sided signed-rank test, Wilcoxon 1945; p = 1 if all differences are zero),
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
    median, median_low, median_high = bootstrap_median_ci(d, n_boot, seed, confidence)
    w_stat, w_p = _wilcoxon(d)
    t_stat, t_p = _ttest(a, b)
    return {
        "n": int(d.size),
        "mean_a": float(a.mean()) if d.size else np.nan,
        "mean_b": float(b.mean()) if d.size else np.nan,
        "mean_difference": float(d.mean()) if d.size else np.nan,
        "ci_low": ci_low,
        "ci_high": ci_high,
        "median_difference": median,
        "median_ci_low": median_low,
        "median_ci_high": median_high,
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


def select_scores(
    scores: pd.DataFrame, metric: str | None = None, checkpoint: str = "best"
) -> pd.DataFrame:
    """Rows of one ``checkpoint`` (and ``metric`` when given).

    A table without a ``checkpoint`` column holds only ``best`` checkpoints (tables written
    before the column existed); asking it for another checkpoint is an error.
    """
    _require(scores, [*SCORE_KEYS, "sample_id", "seed", "value"])
    frame = scores if metric is None else scores[scores["metric"] == metric]
    if "checkpoint" in frame.columns:
        return frame[frame["checkpoint"] == checkpoint]
    if checkpoint != "best":
        raise ValueError(f"score table has no 'checkpoint' column, so no {checkpoint!r} scores")
    return frame


def seed_averaged(
    scores: pd.DataFrame, metric: str | None = None, checkpoint: str = "best"
) -> pd.DataFrame:
    """Per-image values of one checkpoint averaged over seeds (NaN seeds skipped).

    Columns ``backbone, method, target, metric, sample_id`` (``patient_id`` too when the table
    has it) and ``value``; restricted to ``metric`` when given.
    """
    frame = select_scores(scores, metric, checkpoint)
    keys = [*SCORE_KEYS, "sample_id", *(["patient_id"] if "patient_id" in frame else [])]
    return frame.groupby(keys, sort=False, dropna=False)["value"].mean().reset_index()


def patient_level(
    scores: pd.DataFrame, metric: str | None = None, checkpoint: str = "best"
) -> pd.DataFrame:
    """Patient-level scores: each image averaged over seeds, then images averaged per patient.

    NaN images are skipped (``n_images`` counts the images that entered the mean; a patient
    with none has value NaN). Columns :data:`PATIENT_COLUMNS`.
    """
    _require(scores, ["patient_id"])
    avg = seed_averaged(scores, metric, checkpoint)
    grouped = avg.groupby([*SCORE_KEYS, "patient_id"], sort=False, dropna=False)["value"]
    out = grouped.agg(value="mean", n_images="count").reset_index()
    return out[PATIENT_COLUMNS]


def _paired_units(
    group: pd.DataFrame, reference: str, method: str, unit: str
) -> tuple[pd.DataFrame, int, int | None]:
    """(reference, method) values paired on images, then averaged per patient for ``unit=
    "patient"``; an image missing or NaN for either method leaves both. Also returns the
    number of paired images and of patients (None without ``patient_id``)."""
    index = ["patient_id", "sample_id"] if "patient_id" in group else ["sample_id"]
    wide = group.pivot_table(index=index, columns="method", values="value", dropna=False)
    pairs = wide[[reference, method]].dropna()
    n_images = len(pairs)
    n_patients = pairs.index.get_level_values(0).nunique() if len(index) == 2 else None
    if unit == "patient":
        pairs = pairs.groupby(level="patient_id", sort=False).mean()
    return pairs, n_images, n_patients


def compare_to_reference(
    scores: pd.DataFrame,
    reference: str = "gradnorm",
    metric: str = "dice",
    targets: Sequence[str] | None = None,
    n_boot: int = 2000,
    seed: int = 0,
    unit: str = "patient",
    checkpoint: str = "best",
    confidence: float = CONFIDENCE,
) -> pd.DataFrame:
    """Paired comparison of ``reference`` against every other method, on patients by default.

    Per backbone, target and other method: each image is averaged over seeds; images scored by
    both methods (not NaN) are kept; with ``unit="patient"`` they are averaged per patient and
    the methods are paired on patients, with ``unit="image"`` on images (the secondary,
    correlated-units analysis). :func:`paired_comparison` is run on the oriented values, so a
    positive difference favours the reference (for HD95, method minus reference). Wilcoxon and
    t-test p-values are each Holm-corrected (Holm 1979) over all rows of the returned table.
    ``n`` is the number of paired units, ``n_patients`` and ``n_images`` those behind them.
    Columns: :data:`COMPARISON_COLUMNS`.
    """
    if unit not in UNITS:
        raise ValueError(f"unit must be one of {UNITS}, got {unit!r}")
    if unit == "patient":
        _require(scores, ["patient_id"])
    avg = seed_averaged(scores, metric, checkpoint)
    if reference not in set(avg["method"]):
        raise ValueError(f"reference method {reference!r} not in the {metric!r} scores")
    if targets is not None:
        avg = avg[avg["target"].isin(list(targets))]
    better = higher_is_better(metric)
    rows = []
    for (backbone, target), group in avg.groupby(["backbone", "target"], sort=False):
        if reference not in set(group["method"]):
            continue
        for method in method_order(m for m in group["method"].unique() if m != reference):
            pairs, n_images, n_patients = _paired_units(group, reference, method, unit)
            ref, other = pairs[reference].to_numpy(), pairs[method].to_numpy()
            a, b = (ref, other) if better else (other, ref)
            res = paired_comparison(a, b, n_boot=n_boot, seed=seed, confidence=confidence)
            rows.append(
                {
                    "backbone": backbone,
                    "target": target,
                    "metric": metric,
                    "higher_is_better": better,
                    "unit": unit,
                    "reference": reference,
                    "method": method,
                    "n": res["n"],
                    "n_patients": n_patients,
                    "n_images": n_images,
                    "mean_reference": float(ref.mean()) if ref.size else np.nan,
                    "mean_method": float(other.mean()) if other.size else np.nan,
                    **{k: res[k] for k in COMPARISON_COLUMNS if k in res and k != "n"},
                }
            )
    out = pd.DataFrame(rows, columns=[c for c in COMPARISON_COLUMNS if not c.endswith("_holm")])
    out.insert(out.columns.get_loc("wilcoxon_p") + 1, "wilcoxon_p_holm", holm(out["wilcoxon_p"]))
    out.insert(out.columns.get_loc("ttest_p") + 1, "ttest_p_holm", holm(out["ttest_p"]))
    return out.astype({"n": int, "n_images": int, "n_patients": "Int64"})


def summary_table(
    scores: pd.DataFrame,
    metric: str = "dice",
    n_boot: int = 2000,
    seed: int = 0,
    confidence: float = CONFIDENCE,
    checkpoint: str = "best",
) -> pd.DataFrame:
    """Per backbone, method and target: patient-level mean with bootstrap CI, and seed spread.

    ``mean, ci_low, ci_high``: over patients of the patient-level values of
    :func:`patient_level` (BCa bootstrap resampling patients, Efron 1987); ``n_patients`` and
    ``n_images`` count the patients and images behind them. ``seed_mean, seed_sd, n_seeds``:
    mean and sample sd (ddof=1) across seeds of each seed's patient-level mean (images averaged
    per patient, then patients). Columns: :data:`SUMMARY_COLUMNS`.
    """
    patients = patient_level(scores, metric, checkpoint).dropna(subset=["value"])
    rows = []
    for key, group in patients.groupby(SCORE_KEYS, sort=False):
        mean, low, high = bootstrap_mean_ci(group["value"].to_numpy(), n_boot, seed, confidence)
        rows.append(
            {
                **dict(zip(SCORE_KEYS, key, strict=True)),
                "n_patients": len(group),
                "n_images": int(group["n_images"].sum()),
                "mean": mean,
                "ci_low": low,
                "ci_high": high,
            }
        )
    out = pd.DataFrame(rows, columns=SUMMARY_COLUMNS[: SUMMARY_COLUMNS.index("ci_high") + 1])
    frame = select_scores(scores, metric, checkpoint)
    per_patient = frame.groupby([*SCORE_KEYS, "seed", "patient_id"], sort=False)["value"].mean()
    per_seed = per_patient.groupby(level=[*SCORE_KEYS, "seed"], sort=False).mean().dropna()
    seeds = per_seed.groupby(level=SCORE_KEYS, sort=False).agg(
        n_seeds="count", seed_mean="mean", seed_sd="std"
    )
    out = out.merge(seeds.reset_index(), on=SCORE_KEYS, how="left")
    out["n_seeds"] = out["n_seeds"].fillna(0).astype(int)
    return _order_methods(out[SUMMARY_COLUMNS])


def _relative_gains(means: np.ndarray, base_index: int, sign: float) -> np.ndarray:
    """Per-target relative gains in percent, 100 * s * (M - M_base) / M_base.

    ``means`` has methods on its second-to-last axis and targets on its last; the baseline is
    method ``base_index``. Delta-MTL is their mean over the last axis.
    """
    base = means[..., [base_index], :]
    with np.errstate(divide="ignore", invalid="ignore"):
        return 100.0 * sign * (means - base) / base


def delta_mtl(
    scores: pd.DataFrame,
    stl_method: str = "stl",
    metric: str = "dice",
    targets: Sequence[str] = ("wound", "tissue_mean"),
    n_boot: int = 2000,
    seed: int = 0,
    confidence: float = CONFIDENCE,
    checkpoint: str = "best",
) -> pd.DataFrame:
    """Delta-MTL (Maninis et al. 2019) of every method against the single-task baseline.

    Delta_m = (1/T) sum_t 100 * s * (M_m,t - M_stl,t) / M_stl,t over ``targets``, with s = +1
    when higher is better and s = -1 for HD95; M is the mean over patients of the patient-level
    values (:func:`patient_level`). Positive is better than single-task. Its interval is the
    percentile bootstrap over patients: patients (those scored by every method on every target)
    are resampled with replacement, the same draw for every method and target, and Delta-MTL is
    recomputed. Returns per backbone and method (the baseline included, at 0): ``backbone,
    method, metric, n_patients, delta_mtl, delta_mtl_ci_low, delta_mtl_ci_high`` and
    ``delta_<target>`` for each target.
    """
    patients = patient_level(scores, metric, checkpoint)
    patients = patients[patients["target"].isin(list(targets))]
    missing = [t for t in targets if t not in set(patients["target"])]
    if missing:
        raise ValueError(f"targets {missing} not in the {metric!r} scores")
    sign = 1.0 if higher_is_better(metric) else -1.0
    alpha = (1.0 - confidence) / 2.0
    rows = []
    for backbone, block in patients.groupby("backbone", sort=False):
        wide = block.pivot_table(
            index="patient_id", columns=["method", "target"], values="value", dropna=False
        )
        methods = method_order(wide.columns.get_level_values("method").unique())
        if stl_method not in methods:
            raise ValueError(f"no {stl_method!r} scores for backbone {backbone!r}")
        columns = pd.MultiIndex.from_product([methods, list(targets)], names=wide.columns.names)
        wide = wide.reindex(columns=columns).dropna()
        values = wide.to_numpy().reshape(len(wide), len(methods), len(targets))
        base_index = methods.index(stl_method)
        per_target = _relative_gains(values.mean(axis=0), base_index, sign)
        point = per_target.mean(axis=-1)
        low = high = np.full(len(methods), np.nan)
        if len(wide):
            draws = np.random.default_rng(seed).integers(0, len(wide), (n_boot, len(wide)))
            boot = _relative_gains(values[draws].mean(axis=1), base_index, sign).mean(axis=-1)
            low, high = np.nanquantile(boot, [alpha, 1.0 - alpha], axis=0)
        for i, method in enumerate(methods):
            rows.append(
                {
                    "backbone": backbone,
                    "method": method,
                    "metric": metric,
                    "n_patients": len(wide),
                    "delta_mtl": float(point[i]),
                    "delta_mtl_ci_low": float(low[i]),
                    "delta_mtl_ci_high": float(high[i]),
                    **{f"delta_{t}": float(per_target[i, j]) for j, t in enumerate(targets)},
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


def balancing_pairs(recipes: Mapping, methods: Iterable[str]) -> list[tuple[str, str]]:
    """(with GradNorm, without) recipe pairs among ``methods``: the same seed architecture
    and architecture options, one balanced by GradNorm and the other by its own balancer
    (hard sharing is left out: WING-MTL against EW is claim (2a)). ``recipes`` maps names to
    :class:`wing.training.methods.Recipe`."""
    methods = list(methods)
    pairs = []
    for name in methods:
        recipe = recipes[name]
        if recipe.balancer != "gradnorm" or recipe.architecture == "hard_sharing":
            continue
        for other in methods:
            partner = recipes[other]
            if (
                other != name
                and partner.balancer != "gradnorm"
                and not partner.per_task_networks
                and partner.architecture == recipe.architecture
                and dict(partner.architecture_options) == dict(recipe.architecture_options)
                and tuple(partner.auxiliary_tasks) == tuple(recipe.auxiliary_tasks)
            ):
                pairs.append((name, other))
    return pairs


def gradnorm_additions(
    scores: pd.DataFrame,
    pairs: Sequence[tuple[str, str]],
    metric: str = "dice",
    targets: Sequence[str] | None = None,
    n_boot: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """Does WING-MTL's balancing add to a seed architecture? Per (with, without) pair of
    :func:`balancing_pairs`, :func:`compare_to_reference` of the GradNorm recipe against its
    partner only (patients as units; Holm over that pair's backbones and targets); a positive
    difference favours GradNorm. Descriptive beside the claims: no verdict rests on it."""
    tables = []
    for with_gradnorm, without in pairs:
        both = scores[scores["method"].isin([with_gradnorm, without])]
        if set(both["method"]) != {with_gradnorm, without}:
            continue  # one of the pair was not scored: nothing to compare
        table = compare_to_reference(
            both, reference=with_gradnorm, metric=metric, targets=targets, n_boot=n_boot, seed=seed
        )
        tables.append(table.assign(with_gradnorm=with_gradnorm))
    if not tables:
        return pd.DataFrame(columns=["with_gradnorm", *COMPARISON_COLUMNS])
    out = pd.concat(tables, ignore_index=True)
    return out[["with_gradnorm", *[c for c in out.columns if c != "with_gradnorm"]]]
