"""Seaborn figures of the longitudinal analysis (issue 10): per-patient healing trajectories,
tissue composition over visits, and Bland-Altman plots of wound area against the reference.

Inputs are the tidy per-visit measures of :mod:`wing.longitudinal.measures` (one row per image
and ``source``: ``reference``, ``truth`` or a method). Figures are built without ``pyplot``
state (as in :mod:`wing.figures.plots`); saving is the caller's.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from wing.figures.plots import method_palette
from wing.longitudinal.measures import REFERENCE, TRUTH, fraction_columns

_PANEL = (3.4, 2.8)  # inches per panel
_FIXED = {REFERENCE: (0.2, 0.2, 0.2), TRUTH: (0.55, 0.55, 0.55)}


def _time(frame: pd.DataFrame) -> tuple[str, str]:
    """(column, label) of the time axis: days where every row has one, else visit number."""
    if "visit_day" in frame and frame["visit_day"].notna().all():
        return "visit_day", "day"
    return "visit", "visit"


def _palette(sources: Sequence[str]) -> dict:
    methods = [s for s in sources if s not in _FIXED]
    return {**method_palette(methods), **{s: c for s, c in _FIXED.items() if s in sources}}


def plot_trajectories(
    measures: pd.DataFrame,
    area: str = "wound_area_px",
    sources: Sequence[str] | None = None,
    col_wrap: int = 4,
) -> Figure:
    """One panel per patient: wound area over time from each source (reference solid black,
    truth dashed grey, each method in its colour; a method's seeds averaged per visit)."""
    sources = list(sources or pd.unique(measures["source"]))
    data = measures[measures["source"].isin(sources)]
    data = data[np.isfinite(data[area].astype(float))]
    time, label = _time(data)
    patients = sorted(pd.unique(data["patient_id"]))
    n_cols = max(1, min(col_wrap, len(patients)))
    n_rows = max(1, int(np.ceil(len(patients) / n_cols)))
    fig = Figure(figsize=(_PANEL[0] * n_cols, _PANEL[1] * n_rows), layout="constrained")
    axes = fig.subplots(n_rows, n_cols, squeeze=False, sharex=True)
    palette = _palette(sources)
    mean = data.groupby(["patient_id", "source", time], as_index=False)[area].mean()
    for ax, patient in zip(axes.flat, patients, strict=False):
        for source in sources:
            line = mean[(mean["patient_id"] == patient) & (mean["source"] == source)]
            if line.empty:
                continue
            ax.plot(
                line[time],
                line[area],
                marker="o",
                markersize=3,
                color=palette[source],
                linestyle="--" if source == TRUTH else "-",
                linewidth=2.2 if source == REFERENCE else 1.3,
                label=source,
            )
        ax.set_title(str(patient), fontsize=9)
        ax.set_xlabel(label)
        ax.set_ylabel(area.replace("_", " "))
    for ax in list(axes.flat)[len(patients) :]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside right upper", frameon=False, fontsize=8)
    return fig


def plot_tissue_composition(
    measures: pd.DataFrame,
    tissue_classes: Sequence[str],
    sources: Sequence[str],
    max_patients: int = 6,
) -> Figure:
    """Stacked bars of each tissue's share of the wound bed at every visit, one row per
    source and one column per patient (the first ``max_patients`` in order)."""
    columns = fraction_columns(tissue_classes)
    data = measures[measures["source"].isin(list(sources))]
    time, label = _time(data)
    patients = sorted(pd.unique(data["patient_id"]))[:max_patients]
    fig = Figure(
        figsize=(_PANEL[0] * len(patients), 2.2 * len(sources) + 0.6), layout="constrained"
    )
    axes = fig.subplots(len(sources), max(1, len(patients)), squeeze=False, sharey=True)
    colours = sns.color_palette("Set2", len(columns))
    for row, source in enumerate(sources):
        for col, patient in enumerate(patients):
            ax = axes[row, col]
            visits = (
                data[(data["source"] == source) & (data["patient_id"] == patient)]
                .groupby(time)[columns]
                .mean()
                .sort_index()
            )
            bottom = np.zeros(len(visits))
            positions = np.arange(len(visits))
            for column, colour in zip(columns, colours, strict=True):
                values = visits[column].fillna(0.0).to_numpy() if len(visits) else bottom
                ax.bar(
                    positions,
                    values,
                    bottom=bottom,
                    color=colour,
                    width=0.8,
                    label=column.removeprefix("fraction_"),
                )
                bottom = bottom + values
            ax.set_xticks(positions, [f"{v:g}" for v in visits.index], fontsize=7)
            ax.set_ylim(0, 1)
            if row == 0:
                ax.set_title(str(patient), fontsize=9)
            if col == 0:
                ax.set_ylabel(f"{source}\nshare of wound bed", fontsize=8)
            if row == len(sources) - 1:
                ax.set_xlabel(label)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside right upper", frameon=False, fontsize=8)
    return fig


def bland_altman_points(
    measures: pd.DataFrame, method: str, measure: str, reference: str = REFERENCE
) -> pd.DataFrame:
    """Per image: the mean of ``method``'s value (seeds averaged) and the reference's, and
    their difference (method - reference)."""
    keys = ["sample_id", "patient_id"]
    ours = measures[measures["source"] == method].groupby(keys)[measure].mean()
    theirs = measures[measures["source"] == reference].groupby(keys)[measure].mean()
    both = pd.concat({"method": ours, "reference": theirs}, axis=1).dropna()
    both["mean"] = (both["method"] + both["reference"]) / 2
    both["difference"] = both["method"] - both["reference"]
    return both.reset_index()


def plot_bland_altman(
    measures: pd.DataFrame,
    methods: Sequence[str],
    measure: str = "log_wound_area",
    reference: str = REFERENCE,
) -> Figure:
    """Bland-Altman plot (Bland & Altman 1986) per method against the reference: difference
    over mean per image, with the bias and the 95% limits of agreement (bias ± 1.96 SD;
    image-level lines for reading only: the tables give the patient-level CIs)."""
    fig = Figure(figsize=(_PANEL[0] * len(methods), _PANEL[1]), layout="constrained")
    axes = fig.subplots(1, max(1, len(methods)), squeeze=False, sharey=True)
    palette = _palette(list(methods))
    for ax, method in zip(axes.flat, methods, strict=False):
        points = bland_altman_points(measures, method, measure, reference)
        ax.scatter(points["mean"], points["difference"], s=12, color=palette[method])
        if len(points) > 1:
            bias = points["difference"].mean()
            spread = 1.96 * points["difference"].std(ddof=1)
            ax.axhline(bias, color="black", linewidth=1)
            for limit in (bias - spread, bias + spread):
                ax.axhline(limit, color="black", linewidth=0.8, linestyle="--")
        ax.axhline(0, color="grey", linewidth=0.5)
        ax.set_title(method, fontsize=9)
        ax.set_xlabel(f"mean of method and {reference}")
        ax.set_ylabel(f"{measure.replace('_', ' ')}: method − {reference}")
    return fig


def plot_not_assessed(title: str, reason: str) -> Figure:
    """A figure that says why an analysis was not run (so the stage's declared figures exist
    on every dataset, and a reader sees the reason where the figure would be)."""
    fig = Figure(figsize=(6, 1.6), layout="constrained")
    ax = fig.subplots()
    ax.axis("off")
    ax.text(0.5, 0.5, f"{title}: not assessed\n{reason}", ha="center", va="center", wrap=True)
    return fig
