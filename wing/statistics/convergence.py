"""Convergence epochs of the two tasks, for the claim that both converge at the same epoch.

A task's convergence epoch is the epoch of its minimum validation loss (the epoch early stopping
on that task would keep), or, with a relative ``tolerance``, the first epoch within it of the
minimum. The history table has the columns ``method, backbone, seed, epoch (1-based), task
("wound"/"tissue"), val_loss``; runs may differ in length (early stopping). The run-level table
``runs`` may say whether a run ``stopped_early`` (absent: False).

WING-MTL's claim (3) is comparative: its wound-vs-tissue epoch gap is set against every other
method's gap, paired over seeds (:func:`convergence_comparison`); the verdict rule is
:func:`wing.statistics.claims.judge_convergence`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

TASKS = ("wound", "tissue")
RUN_KEYS = ("method", "backbone", "seed")
CONVERGENCE_COMPARISON_COLUMNS = [
    "backbone",
    "reference",
    "method",
    "seed",
    "reference_gap",
    "method_gap",
    "gap_difference",
    "n_seeds",
    "window",
    "reference_within_window",
    "reference_within_window_all",
]


def convergence_epoch(val_losses: Sequence[float] | np.ndarray, tolerance: float = 0.0) -> int:
    """1-based position of the minimum of ``val_losses`` (the first one on ties; NaN skipped).

    With ``tolerance > 0`` it is the first epoch whose loss is within a relative ``tolerance`` of
    the minimum, i.e. ``loss <= min + tolerance * |min|`` (e.g. 0.01: within 1 % of the best
    loss), which is robust to a late, negligible further decrease.
    """
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    losses = np.asarray(val_losses, dtype=float)
    if losses.ndim != 1 or losses.size == 0 or np.all(np.isnan(losses)):
        raise ValueError("val_losses must be a non-empty 1-D sequence with a finite value")
    best = np.nanmin(losses)
    threshold = best + tolerance * abs(best)
    with np.errstate(invalid="ignore"):
        hits = np.flatnonzero(losses <= threshold)
    return int(hits[0]) + 1


def _stopped_early(runs: pd.DataFrame | None, keys: list[str]) -> pd.DataFrame | None:
    """``keys`` + ``stopped_early`` (bool) from the run-level table, or None if it lacks it."""
    if runs is None or "stopped_early" not in runs.columns:
        return None
    if not set(keys) <= set(runs.columns):
        raise ValueError(f"runs table lacks run keys {sorted(set(keys) - set(runs.columns))}")
    flags = runs[[*keys, "stopped_early"]].drop_duplicates(subset=keys)
    return flags.assign(stopped_early=flags["stopped_early"].fillna(False).astype(bool))


def convergence_table(
    history: pd.DataFrame,
    tolerance: float = 0.0,
    tasks: Sequence[str] = TASKS,
    runs: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per run (method, backbone, seed): each task's convergence epoch and minimum loss.

    Epochs are taken from the ``epoch`` column after sorting by it, so the result is an actual
    epoch number even when logging started later or skipped epochs; each run's own last epoch
    is used, so runs may differ in length. Columns: the run keys present in ``history``, then
    ``<task>_epoch`` and ``<task>_min_loss`` per task and, for two tasks, ``epoch_gap =
    |epoch_1 - epoch_2|``, ``epochs`` (the run's last logged epoch), ``stopped_early`` (from
    ``runs``; False when absent) and ``at_last_epoch``: True when some task's validation loss
    is lowest (strictly, whatever the tolerance) at the last epoch its network trained, i.e. it
    was still falling when training ended and the run says nothing about where it converges.
    A network that stopped early has its minimum ``patience`` epochs before its end, so it is
    never flagged. A task missing from a run gives ``<NA>`` epochs.
    """
    missing = [c for c in ("epoch", "task", "val_loss") if c not in history.columns]
    if missing:
        raise ValueError(f"history lacks columns {missing}")
    keys = [k for k in RUN_KEYS if k in history.columns]
    rows = []
    for run, group in history.groupby(keys, sort=False) if keys else [((), history)]:
        row = dict(zip(keys, run if isinstance(run, tuple) else (run,), strict=True))
        row["epochs"] = int(group["epoch"].max())
        still_falling = False
        for task in tasks:
            curve = group[group["task"] == task].sort_values("epoch", kind="stable")
            losses = curve["val_loss"].to_numpy(dtype=float)
            if losses.size == 0 or np.all(np.isnan(losses)):
                row[f"{task}_epoch"], row[f"{task}_min_loss"] = pd.NA, np.nan
                continue
            position = convergence_epoch(losses, tolerance)
            row[f"{task}_epoch"] = int(curve["epoch"].iloc[position - 1])
            row[f"{task}_min_loss"] = float(np.nanmin(losses))
            # the raw minimum at the network's own last epoch: the loss was still falling
            still_falling |= convergence_epoch(losses, 0.0) == losses.size
        row["at_last_epoch"] = still_falling
        rows.append(row)
    columns = [
        *keys,
        *(f"{t}_{s}" for t in tasks for s in ("epoch", "min_loss")),
        "epochs",
        "at_last_epoch",
    ]
    out = pd.DataFrame(rows, columns=columns)
    for task in tasks:
        out[f"{task}_epoch"] = out[f"{task}_epoch"].astype("Int64")
    if len(tasks) == 2:
        out["epoch_gap"] = (out[f"{tasks[0]}_epoch"] - out[f"{tasks[1]}_epoch"]).abs()
    flags = _stopped_early(runs, keys)
    if flags is None:
        out["stopped_early"] = False
    else:
        out = out.merge(flags, on=keys, how="left")
        out["stopped_early"] = out["stopped_early"].fillna(False).astype(bool)
    out["at_last_epoch"] = out.pop("at_last_epoch").astype(bool)
    return out


def convergence_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per method and backbone: seeds, mean / median / max ``epoch_gap``, and the share of seeds
    whose two tasks converged at the same epoch (``same_epoch_rate``)."""
    keys = [k for k in ("method", "backbone") if k in table.columns]
    gaps = table.dropna(subset=["epoch_gap"]).astype({"epoch_gap": float})
    grouped = gaps.groupby(keys, sort=False)["epoch_gap"]
    out = grouped.agg(n_runs="count", mean_gap="mean", median_gap="median", max_gap="max")
    out["same_epoch_rate"] = grouped.apply(lambda g: float(np.mean(g == 0)))
    return out.reset_index()


def convergence_comparison(
    table: pd.DataFrame, reference: str = "gradnorm", window: int = 0
) -> pd.DataFrame:
    """The reference's wound-vs-tissue epoch gap against every other method's, paired on seeds.

    One row per backbone, other method and seed that both methods ran (with both tasks'
    epochs): ``reference_gap``, ``method_gap``, ``gap_difference = reference_gap - method_gap``
    (negative: the reference's tasks converge closer together), ``n_seeds`` (paired seeds of
    that backbone and method), ``reference_within_window`` (``reference_gap <= window``, the
    "same epoch" tolerance in epochs) and ``reference_within_window_all`` (on every paired
    seed). Columns: :data:`CONVERGENCE_COMPARISON_COLUMNS`; empty without a reference run.
    """
    if window < 0:
        raise ValueError(f"window must be >= 0 epochs, got {window}")
    gaps = table.dropna(subset=["epoch_gap"]).astype({"epoch_gap": int})
    if "backbone" not in gaps.columns:
        gaps = gaps.assign(backbone=None)
    rows = []
    for backbone, block in gaps.groupby("backbone", sort=False, dropna=False):
        ours = block[block["method"] == reference].set_index("seed")["epoch_gap"]
        others = block[block["method"] != reference]
        for method, group in others.groupby("method", sort=False):
            theirs = group.set_index("seed")["epoch_gap"]
            seeds = [s for s in ours.index if s in theirs.index]
            within = [bool(ours[s] <= window) for s in seeds]
            for seed, ok in zip(seeds, within, strict=True):
                rows.append(
                    {
                        "backbone": backbone,
                        "reference": reference,
                        "method": method,
                        "seed": seed,
                        "reference_gap": int(ours[seed]),
                        "method_gap": int(theirs[seed]),
                        "gap_difference": int(ours[seed] - theirs[seed]),
                        "n_seeds": len(seeds),
                        "window": window,
                        "reference_within_window": ok,
                        "reference_within_window_all": all(within),
                    }
                )
    return pd.DataFrame(rows, columns=CONVERGENCE_COMPARISON_COLUMNS)
