"""How well per-visit measures track healing: healing rates, tissue trends, PAR at 4 weeks.

Healing rate (this compendium's model). Wound area is taken to decay exponentially, area ∝
exp(-rate * time), as the synthetic cohort's generator draws it (:mod:`wing.data.synthetic`),
so log area is linear in time with slope -rate. Each source's log areas are fitted with a
linear mixed model (Laird & Ware 1982; ``statsmodels`` ``MixedLM``, REML)

    log area_ij = (b0 + u0_i) + (b1 + u1_i) * time_ij + e_ij,  (u0_i, u1_i) ~ N(0, G),

random intercepts and slopes per patient (``re_formula="~time"``). The fixed-effect healing
rate is -b1 (Wald interval); patient i's rate is -(b1 + u1_i) with u1_i the predicted random
slope (BLUP). ``time`` is ``visit_day`` when every visit has one, else the visit number (rates
then are per visit and cannot be compared with a per-day truth). Area is in mm² when every
visit has a pixel spacing (the synthetic photographs are taken from varying distances, so
pixel counts of one wound change with the camera), else in pixels; areas under one pixel are
floored at one pixel so that a wound predicted absent stays finite. Time is rescaled to unit
SD for the optimiser; the results are per day (or visit).

Convergence. A fit counts only if ``statsmodels`` reports convergence and the fixed effects,
their standard errors and the random effects are finite (boundary warnings, e.g. a random-slope
variance of 0, are kept in ``note``). Otherwise, or with fewer than three patients with two
visits, the documented fallback is the two-stage summary-statistics approach: an ordinary
least-squares slope per patient, their mean as the fixed effect with a t interval over
patients. The ``fit`` column names which fit was used and ``note`` why.

Healing-rate error per patient and source: |source's rate - truth's rate|, with truth the
generator's ``healing_rate_per_day`` (synthetic data; ``against="truth"``), and |source's rate
- the reference masks' fitted rate| (``against="reference"``).

Tissue trends fit each tissue's share of the wound bed, and the share of slough and necrosis
together (the non-viable bed), with the same model on the share itself (change per day), so
that granulation filling in and slough and necrosis receding read as positive and negative
slopes. The share is bounded, so a linear trend is a first-order summary over the visits seen.

Percent area reduction at 4 weeks (PAR4; Sheehan et al. 2003, Diabetes Care 26:1879): 100 *
(A0 - A28) / A0 with A0 the area at the patient's first visit and A28 the area 28 days later.
This compendium interpolates A28 log-linearly (geometrically) between the two visits around
day 28, as the areas decay exponentially; a patient whose visits do not reach day 28 is
``not assessed`` (no extrapolation). PAR4 >= 50% calls a ``healer`` (Sheehan et al.'s
threshold), else ``non-healer``. Predicted against reference calls: Cohen's kappa (Cohen
1960, ``statsmodels`` ``cohens_kappa``) over the patients both assessed.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from wing.longitudinal.agreement import AREA_FLOOR_PX, agreement_table
from wing.longitudinal.measures import (
    AREA_COLUMNS,
    REFERENCE,
    TRUTH,
    fraction_groups,
    require_columns,
    true_healing_rates,
)

MIXEDLM = "mixedlm"
PATIENT_OLS = "per-patient OLS"
HEALER, NON_HEALER, NOT_ASSESSED = "healer", "non-healer", "not assessed"
PAR4_THRESHOLD = 50.0
PAR4_DAY = 28.0
TISSUE_GROUPS = {"slough_and_necrosis": ("slough", "necrosis")}
HEALING_RATE_COLUMNS = [
    "source",
    "time_unit",
    "area_unit",
    "healing_rate",
    "ci_low",
    "ci_high",
    "p_value",
    "n_patients",
    "n_visits",
    "fit",
    "note",
]
PATIENT_RATE_COLUMNS = ["source", "patient_id", "healing_rate", "time_unit", "fit"]
HEALING_ERROR_COLUMNS = [
    "method",
    "patient_id",
    "against",
    "healing_rate",
    "against_rate",
    "error",
    "time_unit",
    "fit",
    "against_fit",
]
TREND_COLUMNS = [
    "source",
    "measure",
    "time_unit",
    "slope",
    "ci_low",
    "ci_high",
    "p_value",
    "n_patients",
    "n_visits",
    "fit",
    "note",
]
PAR4_COLUMNS = [
    "source",
    "patient_id",
    "baseline_day",
    "baseline_area",
    "area_day_28",
    "area_unit",
    "percent_area_reduction",
    "call",
]
PAR4_AGREEMENT_COLUMNS = [
    "method",
    "against",
    "n_patients",
    "n_agree",
    "percent_agreement",
    "kappa",
    "note",
]
TABLES = (
    "agreement",
    "healing_rates",
    "patient_rates",
    "healing_errors",
    "tissue_trends",
    "par4",
    "par4_agreement",
)


@dataclass(frozen=True)
class TrendFit:
    """A fitted linear trend over time: fixed slope with its interval, per-patient slopes."""

    slope: float
    ci_low: float
    ci_high: float
    p_value: float
    patient_slopes: pd.Series  # patient_id -> fixed + random slope (or own OLS slope)
    fit: str  # MIXEDLM or PATIENT_OLS
    note: str
    n_patients: int
    n_visits: int


def _per_patient_ols(data: pd.DataFrame, confidence: float, note: str) -> TrendFit:
    """Two-stage fallback: OLS slope per patient (two or more distinct times), their mean and
    its t interval over patients."""
    slopes = {}
    for patient, group in data.groupby("patient_id", sort=True):
        if group["time"].nunique() >= 2:
            slopes[patient] = float(np.polyfit(group["time"], group["value"], 1)[0])
    slopes = pd.Series(slopes, dtype=float, name="slope")
    n = len(slopes)
    mean = float(slopes.mean()) if n else np.nan
    low = high = p = np.nan
    if n >= 2:
        sem = slopes.std(ddof=1) / np.sqrt(n)
        half = stats.t.ppf(0.5 + confidence / 2.0, n - 1) * sem
        low, high = mean - half, mean + half
        if sem > 0:
            p = float(2 * stats.t.sf(abs(mean / sem), n - 1))
    return TrendFit(mean, low, high, p, slopes, PATIENT_OLS, note, n, len(data))


def _mixedlm(data: pd.DataFrame, confidence: float) -> tuple[TrendFit | None, str]:
    """The random-intercept-and-slope fit, or None and why it was not accepted."""
    import statsmodels.formula.api as smf

    scale = float(data["time"].std())
    frame = data.assign(t=data["time"] / scale)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = smf.mixedlm("value ~ t", frame, groups=frame["patient_id"], re_formula="~t")
            result = model.fit(reml=True, method=["lbfgs", "bfgs", "cg"])
    except (np.linalg.LinAlgError, ValueError) as error:
        return None, f"MixedLM failed ({type(error).__name__}: {error})"
    messages = sorted({str(w.message).splitlines()[0] for w in caught})
    random = pd.DataFrame(result.random_effects).T
    finite = (
        np.isfinite(result.fe_params).all()
        and np.isfinite(result.bse_fe).all()
        and np.isfinite(random.to_numpy(dtype=float)).all()
    )
    if not result.converged or not finite:
        why = "did not converge" if not result.converged else "non-finite estimates"
        return None, f"MixedLM {why}" + (f" ({'; '.join(messages)})" if messages else "")
    low, high = result.conf_int(alpha=1.0 - confidence).loc["t"] / scale
    slopes = (result.fe_params["t"] + random["t"]) / scale
    note = "MixedLM converged" + (f" with warnings: {'; '.join(messages)}" if messages else "")
    fit = TrendFit(
        float(result.fe_params["t"] / scale),
        float(low),
        float(high),
        float(result.pvalues["t"]),
        slopes.rename("slope").sort_index().astype(float),
        MIXEDLM,
        note,
        int(data["patient_id"].nunique()),
        len(data),
    )
    return fit, note


def fit_trend(
    data: pd.DataFrame, value: str = "value", time: str = "time", confidence: float = 0.95
) -> TrendFit:
    """Linear trend of ``value`` over ``time`` with random intercepts and slopes per patient
    (module docstring), falling back to per-patient OLS slopes when the mixed model fails.

    ``data`` has ``patient_id``, ``time`` and ``value`` columns (named by the arguments); rows
    with a missing value or time are left out.
    """
    require_columns(data, ["patient_id", time, value], "trend data")
    frame = pd.DataFrame(
        {
            "patient_id": data["patient_id"].astype(str),
            "time": pd.to_numeric(data[time], errors="coerce"),
            "value": pd.to_numeric(data[value], errors="coerce"),
        }
    ).dropna()
    repeated = (frame.groupby("patient_id")["time"].nunique() >= 2).sum()
    if repeated < 3:
        note = f"{repeated} patient(s) with two or more visit times: too few for MixedLM"
        return _per_patient_ols(frame, confidence, note)
    if frame["value"].nunique() < 2:
        return _per_patient_ols(frame, confidence, "no variation in the values: no MixedLM")
    fit, note = _mixedlm(frame, confidence)
    return fit if fit is not None else _per_patient_ols(frame, confidence, f"{note}; fell back")


def time_axis(measures: pd.DataFrame) -> tuple[pd.Series, str]:
    """The time of each visit and its unit: ``visit_day`` ("day") when every row has one,
    else the ``visit`` number ("visit")."""
    if "visit_day" in measures and measures["visit_day"].notna().all():
        return measures["visit_day"].astype(float), "day"
    require_columns(measures, ["visit"], "measures without a visit_day on every row")
    if measures["visit"].isna().any():
        raise ValueError("measures need a visit_day or a visit number on every row")
    return measures["visit"].astype(float), "visit"


def healing_log_area(measures: pd.DataFrame) -> tuple[np.ndarray, str]:
    """Log wound area per visit and its unit: mm² when every row has a pixel spacing, else px
    (areas floored at one pixel; module docstring)."""
    require_columns(measures, ["wound_area_px"], "measures")
    area = np.maximum(measures["wound_area_px"].to_numpy(dtype=float), AREA_FLOOR_PX)
    spacing = (
        measures["pixel_spacing_mm"].to_numpy(dtype=float)
        if "pixel_spacing_mm" in measures
        else np.full(len(measures), np.nan)
    )
    if len(spacing) and np.isfinite(spacing).all():
        return np.log(area * spacing**2), "mm2"
    return np.log(area), "px"


def healing_rates(
    measures: pd.DataFrame, confidence: float = 0.95
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Healing rate of every source: (fixed-effect table, per-patient table).

    One fit per source (:func:`fit_trend` of log area; rate = -slope). Columns
    :data:`HEALING_RATE_COLUMNS` and :data:`PATIENT_RATE_COLUMNS`.
    """
    require_columns(measures, ["patient_id", "source"], "measures")
    time, unit = time_axis(measures)
    log_area, area_unit = healing_log_area(measures)
    data = pd.DataFrame(
        {
            "source": measures["source"].to_numpy(),
            "patient_id": measures["patient_id"].astype(str).to_numpy(),
            "time": time.to_numpy(),
            "value": log_area,
        }
    )
    rates, patients = [], []
    for source, block in data.groupby("source", sort=False):
        fit = fit_trend(block, confidence=confidence)
        rates.append(
            {
                "source": source,
                "time_unit": unit,
                "area_unit": area_unit,
                "healing_rate": -fit.slope,
                "ci_low": -fit.ci_high,
                "ci_high": -fit.ci_low,
                "p_value": fit.p_value,
                "n_patients": fit.n_patients,
                "n_visits": fit.n_visits,
                "fit": fit.fit,
                "note": fit.note,
            }
        )
        patients.append(
            pd.DataFrame(
                {
                    "source": source,
                    "patient_id": fit.patient_slopes.index.astype(str),
                    "healing_rate": -fit.patient_slopes.to_numpy(),
                    "time_unit": unit,
                    "fit": fit.fit,
                }
            )
        )
    patient_table = (
        pd.concat(patients, ignore_index=True)
        if patients
        else pd.DataFrame(columns=PATIENT_RATE_COLUMNS)
    )
    return pd.DataFrame(rates, columns=HEALING_RATE_COLUMNS), patient_table[PATIENT_RATE_COLUMNS]


def healing_errors(
    patient_rates: pd.DataFrame,
    true_rates: pd.Series | None = None,
    reference: str = REFERENCE,
) -> pd.DataFrame:
    """Per patient and source, |rate - truth's rate| and |rate - the reference fit's rate|.

    ``patient_rates``: the per-patient table of :func:`healing_rates`; ``true_rates``: the
    generator's rate per day indexed by ``patient_id`` (:func:`~wing.longitudinal.measures.
    true_healing_rates`). Truth rows need per-day rates; the reference rows need a
    ``reference`` source. Columns :data:`HEALING_ERROR_COLUMNS`.
    """
    require_columns(patient_rates, PATIENT_RATE_COLUMNS, "patient rate table")
    parts = []
    per_day = (patient_rates["time_unit"] == "day").all()
    if true_rates is not None and len(true_rates) and per_day:
        truth = pd.DataFrame(
            {
                "patient_id": true_rates.index.astype(str),
                "against_rate": true_rates.to_numpy(dtype=float),
                "against_fit": "generator",
            }
        )
        parts.append(patient_rates.merge(truth, on="patient_id").assign(against=TRUTH))
    ours = patient_rates[patient_rates["source"] == reference]
    if len(ours):
        fitted = ours[["patient_id", "healing_rate", "fit"]].rename(
            columns={"healing_rate": "against_rate", "fit": "against_fit"}
        )
        others = patient_rates[patient_rates["source"] != reference]
        parts.append(others.merge(fitted, on="patient_id").assign(against=REFERENCE))
    if not parts:
        return pd.DataFrame(columns=HEALING_ERROR_COLUMNS)
    out = pd.concat(parts, ignore_index=True).rename(columns={"source": "method"})
    out["error"] = (out["healing_rate"] - out["against_rate"]).abs()
    return out[HEALING_ERROR_COLUMNS]


def tissue_trends(
    measures: pd.DataFrame,
    groups: Mapping[str, Sequence[str]] = TISSUE_GROUPS,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Trend of each tissue's share of the wound bed (and of each group of tissues whose
    classes are all present) over time, per source, by :func:`fit_trend`. Columns
    :data:`TREND_COLUMNS`; ``slope`` is the change of the share per day (or visit)."""
    require_columns(measures, ["patient_id", "source"], "measures")
    time, unit = time_axis(measures)
    shares = [c for c in measures.columns if c.startswith("fraction_")]
    classes = [c.removeprefix("fraction_") for c in shares]
    values = {c: measures[c].astype(float) for c in shares}
    for name, members in fraction_groups(classes, groups).items():
        values[f"fraction_{name}"] = measures[members].astype(float).sum(axis=1, min_count=1)
    rows = []
    for measure, value in values.items():
        data = pd.DataFrame(
            {
                "source": measures["source"],
                "patient_id": measures["patient_id"],
                "time": time,
                "value": value,
            }
        )
        for source, block in data.groupby("source", sort=False):
            fit = fit_trend(block, confidence=confidence)
            rows.append(
                {
                    "source": source,
                    "measure": measure,
                    "time_unit": unit,
                    "slope": fit.slope,
                    "ci_low": fit.ci_low,
                    "ci_high": fit.ci_high,
                    "p_value": fit.p_value,
                    "n_patients": fit.n_patients,
                    "n_visits": fit.n_visits,
                    "fit": fit.fit,
                    "note": fit.note,
                }
            )
    return pd.DataFrame(rows, columns=TREND_COLUMNS)


def percent_area_reduction(
    days: Sequence[float], areas: Sequence[float], day: float = PAR4_DAY
) -> tuple[float, float, float, float]:
    """(baseline day, baseline area, area ``day`` days later, PAR in percent) of one patient.

    Baseline is the first visit; the later area is interpolated linearly in log area between
    the visits around it (exact at a visit); NaN for both when the visits end before it
    (Sheehan et al. 2003; module docstring). Areas must be positive; NaN visits are skipped.
    """
    days, areas = np.asarray(days, dtype=float), np.asarray(areas, dtype=float)
    keep = ~(np.isnan(days) | np.isnan(areas))
    days, areas = days[keep], areas[keep]
    if (areas <= 0).any():
        raise ValueError("areas must be positive (floor them at one pixel first)")
    if days.size == 0:
        return np.nan, np.nan, np.nan, np.nan
    order = np.argsort(days, kind="stable")
    days, areas = days[order], areas[order]
    baseline_day, baseline = float(days[0]), float(areas[0])
    target = baseline_day + day
    if days[-1] < target:
        return baseline_day, baseline, np.nan, np.nan
    later = float(np.exp(np.interp(target, days, np.log(areas))))
    return baseline_day, baseline, later, 100.0 * (baseline - later) / baseline


def healer_call(par: float, threshold: float = PAR4_THRESHOLD) -> str:
    """``healer`` if PAR4 >= ``threshold`` percent, ``non-healer`` below, else not assessed."""
    if pd.isna(par):
        return NOT_ASSESSED
    return HEALER if par >= threshold else NON_HEALER


def par4_table(
    measures: pd.DataFrame, threshold: float = PAR4_THRESHOLD, day: float = PAR4_DAY
) -> pd.DataFrame:
    """PAR at ``day`` days and the healer call of every patient of every source.

    Needs ``visit_day``; without it (or with a patient's visits ending early) the call is
    ``not assessed``. Areas in mm² when every visit has a spacing, else px, floored at one
    pixel as for the healing rate. Columns :data:`PAR4_COLUMNS`.
    """
    require_columns(measures, ["patient_id", "source", "wound_area_px"], "measures")
    log_area, unit = healing_log_area(measures)
    days = (
        measures["visit_day"].astype(float)
        if "visit_day" in measures
        else pd.Series(np.nan, measures.index)
    )
    data = pd.DataFrame(
        {
            "source": measures["source"].to_numpy(),
            "patient_id": measures["patient_id"].astype(str).to_numpy(),
            "day": days.to_numpy(),
            "area": np.exp(log_area),
        }
    )
    rows = []
    for (source, patient), block in data.groupby(["source", "patient_id"], sort=False):
        first, baseline, later, par = percent_area_reduction(block["day"], block["area"], day)
        rows.append(
            {
                "source": source,
                "patient_id": patient,
                "baseline_day": first,
                "baseline_area": baseline,
                "area_day_28": later,
                "area_unit": unit,
                "percent_area_reduction": par,
                "call": healer_call(par, threshold),
            }
        )
    return pd.DataFrame(rows, columns=PAR4_COLUMNS)


def healer_agreement(
    par4: pd.DataFrame, against: Sequence[str] = (REFERENCE, TRUTH)
) -> pd.DataFrame:
    """Agreement of each source's healer calls with those of each source in ``against``.

    Over the patients both assessed: count and percent agreeing, and Cohen's kappa (NaN, with
    a note, when it is undefined: both gave every patient the same call, or no patient).
    Columns :data:`PAR4_AGREEMENT_COLUMNS`.
    """
    from statsmodels.stats.inter_rater import cohens_kappa

    require_columns(par4, ["source", "patient_id", "call"], "PAR4 table")
    assessed = par4[par4["call"] != NOT_ASSESSED]
    wide = assessed.pivot(index="patient_id", columns="source", values="call")
    rows = []
    for base in [a for a in against if a in set(par4["source"])]:
        for method in [s for s in dict.fromkeys(par4["source"]) if s != base]:
            both = (
                wide[[method, base]].dropna()
                if {method, base} <= set(wide.columns)
                else pd.DataFrame(columns=[method, base])
            )
            n = len(both)
            agree = int((both[method] == both[base]).sum())
            kappa, note = np.nan, ""
            if n == 0:
                note = "no patient assessed by both"
            elif both[method].nunique() == 1 and both[base].nunique() == 1 and agree == n:
                note = f"undefined: both called every patient {both[method].iloc[0]}"
            else:
                labels = [HEALER, NON_HEALER]
                table = pd.crosstab(both[method], both[base]).reindex(
                    index=labels, columns=labels, fill_value=0
                )
                kappa = float(cohens_kappa(table.to_numpy(), return_results=False))
            rows.append(
                {
                    "method": method,
                    "against": base,
                    "n_patients": n,
                    "n_agree": agree,
                    "percent_agreement": 100.0 * agree / n if n else np.nan,
                    "kappa": kappa,
                    "note": note,
                }
            )
    return pd.DataFrame(rows, columns=PAR4_AGREEMENT_COLUMNS)


def _analysis_frames(measures: pd.DataFrame, checkpoint: str) -> list[tuple[str, pd.DataFrame]]:
    """(backbone, one row per source and visit) pairs: one checkpoint, seeds averaged per
    visit; reference and truth rows (no backbone) join every backbone's predictions."""
    frame = measures
    if "checkpoint" in frame:
        frame = frame[frame["checkpoint"].isna() | (frame["checkpoint"] == checkpoint)]
    if "backbone" not in frame or frame["backbone"].isna().all():
        frame = frame.assign(backbone=np.nan)
    keys = ["backbone", "source", "sample_id", "patient_id", "visit", "visit_day"]
    keys = [k for k in keys if k in frame]
    values = [c for c in frame.columns if c in AREA_COLUMNS or c.startswith("fraction_")]
    averaged = frame.groupby(keys, sort=False, dropna=False)[values].mean().reset_index()
    shared = averaged[averaged["backbone"].isna()].drop(columns="backbone")
    backbones = list(dict.fromkeys(averaged["backbone"].dropna()))
    if not backbones:
        return [("all", shared)]
    out = []
    for backbone in backbones:
        own = averaged[averaged["backbone"] == backbone].drop(columns="backbone")
        both = pd.concat([own, shared], ignore_index=True)
        out.append((backbone, both.drop_duplicates(["source", "sample_id"], keep="first")))
    return out


def longitudinal_tables(
    measures: pd.DataFrame,
    metadata: pd.DataFrame | None = None,
    reference: str = REFERENCE,
    checkpoint: str = "best",
    n_boot: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
    threshold: float = PAR4_THRESHOLD,
    day: float = PAR4_DAY,
    groups: Mapping[str, Sequence[str]] = TISSUE_GROUPS,
) -> dict[str, pd.DataFrame]:
    """Every longitudinal table of one run, for a thin notebook: keys :data:`TABLES`.

    ``measures``: :func:`~wing.longitudinal.measures.measure_table` rows of the reference masks
    (``source=reference``), optionally of the truth (:func:`~wing.longitudinal.measures.
    truth_measures`) and of each method's predictions, which may carry ``backbone``, ``seed``
    and ``checkpoint`` columns: rows of ``checkpoint`` are used, seeds are averaged per visit
    (areas and shares: arithmetic means) and each backbone is analysed with the reference and
    truth rows (those without a backbone). ``metadata``: the dataset's ``metadata.csv``, whose
    ``healing_rate_per_day`` (synthetic only) is the true rate. Every table starts with a
    ``backbone`` column ("all" without backbones), followed by the columns of
    :func:`~wing.longitudinal.agreement.agreement_table`, :func:`healing_rates` (both tables),
    :func:`healing_errors`, :func:`tissue_trends`, :func:`par4_table` and
    :func:`healer_agreement`.
    """
    require_columns(measures, ["sample_id", "patient_id", "source", "wound_area_px"], "measures")
    if reference not in set(measures["source"]):
        raise ValueError(f"measures have no {reference!r} rows (the annotated masks)")
    true_rates = true_healing_rates(metadata) if metadata is not None else None
    tables: dict[str, list[pd.DataFrame]] = {name: [] for name in TABLES}
    for backbone, frame in _analysis_frames(measures, checkpoint):
        rates, patients = healing_rates(frame, confidence)
        par4 = par4_table(frame, threshold, day)
        parts = {
            "agreement": agreement_table(frame, reference, None, n_boot, seed, confidence),
            "healing_rates": rates,
            "patient_rates": patients,
            "healing_errors": healing_errors(patients, true_rates, reference),
            "tissue_trends": tissue_trends(frame, groups, confidence),
            "par4": par4,
            "par4_agreement": healer_agreement(par4, (reference, TRUTH)),
        }
        for name, table in parts.items():
            tables[name].append(table.assign(backbone=backbone))
    out = {}
    for name, parts_list in tables.items():
        table = pd.concat(parts_list, ignore_index=True)
        out[name] = table[["backbone", *[c for c in table.columns if c != "backbone"]]]
    return out
