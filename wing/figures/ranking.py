"""Critical-difference diagram of the methods' average ranks (Demšar 2006).

Methods are placed at their average rank over patients (1 = best, :func:`wing.statistics.
ranking.average_ranks`); methods whose post-hoc test (Nemenyi or Conover after Friedman,
:func:`wing.statistics.ranking.posthoc`) is not significant at ``alpha`` are joined by a bar.
Drawn by ``scikit_posthocs.critical_difference_diagram`` on the axes of a
:class:`matplotlib.figure.Figure` built without ``pyplot`` state; ``wing.io.save_figure``
saves it with ``bbox_inches="tight"`` so the labels outside the axes are kept.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import scikit_posthocs as sp
from matplotlib.figure import Figure, SubFigure

from wing.figures.plots import method_palette
from wing.statistics.ranking import ASSESSED, pvalue_matrix

CD_GID = "critical-difference"


def plot_critical_difference(
    avg_ranks: Mapping[str, float] | pd.Series,
    pvalue_matrix: pd.DataFrame,
    title: str = "",
    alpha: float = 0.05,
    figure: Figure | SubFigure | None = None,
) -> Figure | SubFigure:
    """Critical-difference diagram: methods at their average rank, non-significant pairs
    (post-hoc p >= ``alpha``) joined by a bar; colours as in every other figure. Drawn on
    ``figure`` (a figure or a sub-figure) when given, else on a new figure."""
    ranks = pd.Series(avg_ranks, dtype=float)
    if set(ranks.index) != set(pvalue_matrix.index) or set(ranks.index) != set(
        pvalue_matrix.columns
    ):
        raise ValueError("avg_ranks and pvalue_matrix must name the same methods")
    if not ranks.index.is_unique:
        raise ValueError(f"avg_ranks names a method twice: {list(ranks.index)} (one backbone)")
    palette = method_palette(list(ranks.index))
    fig = figure if figure is not None else Figure(figsize=(6.0, _height(len(ranks))))
    ax = fig.add_subplot()
    ax.set_gid(CD_GID)
    sp.critical_difference_diagram(
        ranks,
        pvalue_matrix.loc[ranks.index, ranks.index],
        alpha=alpha,
        ax=ax,
        color_palette=palette,
    )
    if title:
        ax.set_title(title, pad=26)  # clear of the rank axis drawn on top
    return fig


def _height(methods: int) -> float:
    return 1.2 + 0.35 * methods


def plot_ranking(
    ranks: pd.DataFrame,
    pairs: pd.DataFrame,
    friedman: pd.DataFrame,
    title: str = "",
    alpha: float = 0.05,
) -> Figure:
    """The critical-difference diagram of one target: one panel per backbone (methods are
    ranked within a backbone), and, where the Friedman test was not assessed (fewer than
    three methods or two patients), a panel that says why, so that the pipeline always
    records what it could and could not draw."""
    backbones = list(dict.fromkeys(ranks["backbone"])) if "backbone" in ranks else []
    if len(backbones) <= 1:
        return _draw_ranking(None, ranks, pairs, friedman, title, alpha)
    sizes = [max(ranks["backbone"].eq(b).sum(), 1) for b in backbones]
    fig = Figure(figsize=(6.0, sum(_height(n) for n in sizes)))
    panels = fig.subfigures(len(backbones), 1, height_ratios=[_height(n) for n in sizes])
    for panel, backbone in zip(panels, backbones, strict=True):
        _draw_ranking(
            panel,
            ranks[ranks["backbone"] == backbone],
            pairs[pairs["backbone"] == backbone] if "backbone" in pairs else pairs,
            friedman[friedman["backbone"] == backbone] if "backbone" in friedman else friedman,
            f"{title} [{backbone}]",
            alpha,
        )
    return fig


def _draw_ranking(figure, ranks, pairs, friedman, title, alpha):
    status = friedman["status"].iloc[0] if len(friedman) else "not assessed: no scores"
    if status != ASSESSED or ranks.empty or pairs.empty:
        fig = figure if figure is not None else Figure(figsize=(6.0, 1.2))
        ax = fig.add_subplot()
        ax.set_axis_off()
        ax.text(0.5, 0.5, f"{title}\n{status}", ha="center", va="center", wrap=True)
        return fig
    backbone = ranks["backbone"].iloc[0]
    average = ranks.set_index("method")["average_rank"]
    return plot_critical_difference(
        average, pvalue_matrix(pairs, backbone=backbone), title=title, alpha=alpha, figure=figure
    )
