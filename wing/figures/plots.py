"""Seaborn figures of training histories, per-image scores and GradNorm's balancer histories.

Every function builds a :class:`matplotlib.figure.Figure` directly (no ``pyplot`` state, no
``show``), so it works under any backend, including ``Agg``; saving is left to the caller
(``wing.io.save_figure``). Colours are fixed per method across figures (stl, ew, gradnorm first).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from wing.statistics.convergence import convergence_epoch
from wing.statistics.paired import method_order, seed_averaged

TASK_ORDER = ("wound", "tissue")
CONVERGENCE_GID = "convergence"
_PANEL = (4.2, 3.2)  # inches per panel


@contextlib.contextmanager
def _seeded_global_numpy(seed: int) -> Iterator[None]:
    """Seed numpy's global generator for a block (seaborn's strip-plot jitter draws from it,
    so a figure is the same bytes every run), then give back the caller's state."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def method_palette(methods: Sequence[str]) -> dict[str, tuple[float, float, float]]:
    """A fixed colour per method: colourblind palette in :func:`method_order`."""
    ordered = method_order(methods)
    return dict(zip(ordered, sns.color_palette("colorblind", len(ordered)), strict=True))


def _ordered(values: Sequence[str], preferred: Sequence[str]) -> list[str]:
    """``preferred`` entries present in ``values`` first, then the rest in order of appearance."""
    present = list(pd.unique(pd.Series(list(values), dtype=object)))
    return [v for v in preferred if v in present] + [v for v in present if v not in preferred]


def _grid(n_rows: int, n_cols: int, sharey: bool | str = False) -> tuple[Figure, np.ndarray]:
    fig = Figure(figsize=(_PANEL[0] * n_cols, _PANEL[1] * n_rows), layout="constrained")
    axes = fig.subplots(n_rows, n_cols, squeeze=False, sharey=sharey)
    return fig, axes


def _keep_one_legend(axes: np.ndarray) -> None:
    """Keep one legend, outside the last panel on the right (seaborn draws one per axes)."""
    flat = list(axes.flat)
    for ax in flat[:-1]:
        legend = ax.get_legend()
        if legend is not None:
            legend.remove()
    if flat[-1].get_legend() is not None:
        sns.move_legend(flat[-1], "upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)


def _backbones(frame: pd.DataFrame) -> list:
    return list(pd.unique(frame["backbone"])) if "backbone" in frame.columns else [None]


def _subset(frame: pd.DataFrame, backbone) -> pd.DataFrame:
    return frame if backbone is None else frame[frame["backbone"] == backbone]


def _mark_convergence(ax: Axes, curves: pd.DataFrame, palette: dict, tolerance: float) -> None:
    """Dotted vertical line at each method's convergence epoch: the median over its runs of
    each run's convergence epoch with ``tolerance`` (:func:`convergence_epoch`), as in the
    tables. Runs may differ in length."""
    keys = [k for k in ("seed", "backbone") if k in curves.columns]
    for method, group in curves.groupby("method", sort=False):
        epochs = []
        for _, run in group.groupby(keys, sort=False) if keys else [(None, group)]:
            run = run.sort_values("epoch", kind="stable")
            losses = run["val_loss"].to_numpy(dtype=float)
            if losses.size and not np.all(np.isnan(losses)):
                epochs.append(run["epoch"].iloc[convergence_epoch(losses, tolerance) - 1])
        if not epochs:
            continue
        epoch = float(np.median(epochs))
        ax.axvline(epoch, color=palette[method], ls=":", lw=1.2, gid=f"{CONVERGENCE_GID}-{method}")


def plot_loss_curves(history: pd.DataFrame, tolerance: float = 0.0) -> Figure:
    """Loss per epoch, one panel per task (columns) and backbone (rows); hue = method.

    Lines are the mean over seeds with a +-1 sd band (runs of different lengths: each epoch
    averages the runs that reached it); validation loss is solid and, if the table has
    ``train_loss``, training loss dashed. A dotted line marks each method's convergence epoch:
    the median over seeds of each run's convergence epoch at the relative ``tolerance`` of
    :func:`~wing.statistics.convergence_epoch` (pass ``compare.convergence_tolerance``, the
    value the convergence tables use).
    """
    splits = {"val_loss": "validation", "train_loss": "train"}
    value_columns = [c for c in splits if c in history.columns]
    id_columns = [c for c in ("method", "backbone", "seed", "epoch", "task") if c in history]
    long = history.melt(
        id_vars=id_columns, value_vars=value_columns, var_name="split", value_name="loss"
    )
    long["split"] = long["split"].map(splits)
    tasks = _ordered(history["task"], TASK_ORDER)
    backbones = _backbones(history)
    palette = method_palette(pd.unique(history["method"]))
    fig, axes = _grid(len(backbones), len(tasks))
    for r, backbone in enumerate(backbones):
        for c, task in enumerate(tasks):
            ax = axes[r, c]
            data = _subset(long, backbone)
            data = data[data["task"] == task]
            sns.lineplot(
                data=data,
                x="epoch",
                y="loss",
                hue="method",
                hue_order=list(palette),
                palette=palette,
                style="split",
                style_order=[splits[v] for v in value_columns],
                errorbar="sd",
                estimator="mean",
                ax=ax,
            )
            curves = _subset(history, backbone)
            _mark_convergence(ax, curves[curves["task"] == task], palette, tolerance)
            title = task if backbone is None else f"{backbone} - {task}"
            ax.set(title=title, xlabel="epoch", ylabel="loss")
    _keep_one_legend(axes)
    return fig


def plot_per_image_scores(
    scores: pd.DataFrame, metric: str = "dice", targets: Sequence[str] | None = None
) -> Figure:
    """Box plot with the individual images overlaid: x = target, hue = method, one panel per
    backbone. Each point is one image's ``metric`` averaged over seeds (NaN images left out)."""
    data = seed_averaged(scores, metric).dropna(subset=["value"])
    if targets is not None:
        data = data[data["target"].isin(list(targets))]
    order = list(targets) if targets is not None else _ordered(data["target"], ["wound"])
    if "tissue_mean" in order and targets is None:
        order = [t for t in order if t != "tissue_mean"] + ["tissue_mean"]
    palette = method_palette(pd.unique(data["method"]))
    backbones = _backbones(data)
    fig, axes = _grid(1, len(backbones), sharey=True)
    fig.set_size_inches(max(4.2, 1.1 * len(order) * len(palette) ** 0.5) * len(backbones), 3.6)
    for ax, backbone in zip(axes.flat, backbones, strict=True):
        subset = _subset(data, backbone)
        common = dict(
            data=subset,
            x="target",
            y="value",
            hue="method",
            order=order,
            hue_order=list(palette),
            palette=palette,
            ax=ax,
        )
        sns.boxplot(**common, showfliers=False, fill=False, linewidth=1.0)
        with _seeded_global_numpy(0):  # seaborn draws the jitter from numpy's global RNG
            sns.stripplot(**common, dodge=True, size=2.5, alpha=0.5, jitter=0.2, legend=False)
        ax.set(
            title=str(backbone) if backbone is not None else "",
            xlabel="",
            ylabel=f"{metric} per image",
        )
        ax.tick_params(axis="x", labelrotation=30)
    _keep_one_legend(axes)
    return fig


def plot_balancer_weights(log: pd.DataFrame, log_grad_norm: bool = False) -> Figure:
    """GradNorm's histories (Chen et al. 2018): task weight vs step (left) and the gradient norm
    of each task's weighted loss vs step (right); hue = task, style = method, mean over seeds
    with a +-1 sd band. ``log_grad_norm`` puts the gradient norms on a log scale."""
    tasks = _ordered(log["task"], TASK_ORDER)
    methods = method_order(pd.unique(log["method"]))
    task_palette = dict(zip(tasks, sns.color_palette("deep", len(tasks)), strict=True))
    fig, axes = _grid(1, 2)
    for ax, column, label in zip(
        axes.flat, ("weight", "grad_norm"), ("task weight", "gradient norm"), strict=True
    ):
        sns.lineplot(
            data=log,
            x="step",
            y=column,
            hue="task",
            hue_order=tasks,
            palette=task_palette,
            style="method" if len(methods) > 1 else None,
            style_order=methods if len(methods) > 1 else None,
            errorbar="sd",
            estimator="mean",
            ax=ax,
        )
        ax.set(xlabel="step", ylabel=label, title=label)
    if log_grad_norm:
        axes[0, 1].set_yscale("log")
    _keep_one_legend(axes)
    return fig


def plot_task_weights(log: pd.DataFrame, columns: int = 4) -> Figure:
    """Every method's task-weight trajectory: the mean weight per epoch (over steps, then over
    seeds, +-1 sd band across seeds), one panel per method, hue = task. Loss-weighting methods
    log the w_i of sum w_i L_i; gradient aggregators the weights torchjd gives the Jacobian's
    rows; MT-CooL 1 for the task whose turn it is. Methods with one network per task (STL)
    have no weights to show and are left out."""
    log = log[log["weight"].notna()]
    network = "network" if "network" in log.columns else "method"
    tasks_per_network = log.groupby(["method", network])["task"].nunique()
    shared = set(tasks_per_network[tasks_per_network > 1].index.get_level_values("method"))
    keys = [k for k in ("method", "seed", "epoch", "task") if k in log.columns]
    per_epoch = log[log["method"].isin(shared)].groupby(keys, as_index=False)["weight"].mean()
    methods = method_order(pd.unique(per_epoch["method"]))
    tasks = _ordered(per_epoch["task"], TASK_ORDER)
    palette = dict(zip(tasks, sns.color_palette("deep", len(tasks)), strict=True))
    n_cols = max(1, min(columns, len(methods)))
    n_rows = max(1, -(-len(methods) // n_cols))
    fig, axes = _grid(n_rows, n_cols)
    for ax, method in zip(axes.flat, methods, strict=False):
        sns.lineplot(
            data=per_epoch[per_epoch["method"] == method],
            x="epoch",
            y="weight",
            hue="task",
            hue_order=tasks,
            palette=palette,
            errorbar="sd",
            ax=ax,
        )
        ax.set(title=method, xlabel="epoch", ylabel="task weight")
    for ax in list(axes.flat)[len(methods) :]:
        ax.set_axis_off()
    if not methods:
        axes[0, 0].text(0.5, 0.5, "no shared network was trained", ha="center", va="center")
    if methods:
        _keep_one_legend(np.array(list(axes.flat)[: len(methods)]))
    return fig
