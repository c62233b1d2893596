"""Contact sheet of dataset samples: photograph, wound mask, tissue mask."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402

from wing.data.format import load_sample, read_legend  # noqa: E402

# Clinical colour conventions: granulation red, slough yellow, necrosis black, epithelium pink.
TISSUE_COLOURS = {
    "granulation": "#c0392b",
    "slough": "#f1c40f",
    "fibrin": "#f1c40f",
    "necrosis": "#1b1b1b",
    "eschar": "#1b1b1b",
    "epithelium": "#f5a9c8",
    "callus": "#3498db",
    "other": "#8e44ad",
}


def tissue_colormap(tissue_classes) -> ListedColormap:
    colours = ["#ffffff"] + [TISSUE_COLOURS.get(c, "#7f8c8d") for c in tissue_classes]
    return ListedColormap(colours)


def plot_cohort_examples(root: str | Path, metadata: pd.DataFrame, n: int = 4):
    """The first visit and the last visit of ``n // 2`` patients (or the first ``n`` samples)."""
    legend = read_legend(root)
    if "visit" in metadata.columns:
        patients = metadata["patient_id"].drop_duplicates().iloc[: max(1, n // 2)]
        rows = metadata[metadata["patient_id"].isin(patients)].sort_values(["patient_id", "visit"])
        picks = pd.concat([rows.groupby("patient_id").head(1), rows.groupby("patient_id").tail(1)])
        picks = picks.sort_values(["patient_id", "visit"]).drop_duplicates("sample_id")
    else:
        picks = metadata.head(n)
    figure, axes = plt.subplots(len(picks), 3, figsize=(6, 2 * len(picks)), squeeze=False)
    cmap = tissue_colormap(legend.tissue_classes)
    for row, sample_id in zip(axes, picks["sample_id"], strict=True):
        image, wound, tissue = load_sample(root, sample_id)
        tissue = np.where(tissue == 255, 0, tissue)
        row[0].imshow(image)
        row[1].imshow(wound, cmap="gray", vmin=0, vmax=1)
        row[2].imshow(
            tissue, cmap=cmap, vmin=0, vmax=len(legend.tissue_classes), interpolation="nearest"
        )
        row[0].set_ylabel(sample_id, fontsize=8)
        for ax in row:
            ax.set_xticks([])
            ax.set_yticks([])
    for ax, title in zip(axes[0], ("photograph", "wound mask", "tissue mask"), strict=True):
        ax.set_title(title, fontsize=9)
    handles = [
        plt.Rectangle((0, 0), 1, 1, color=cmap(i + 1)) for i in range(len(legend.tissue_classes))
    ]
    figure.legend(handles, legend.tissue_classes, loc="lower center", ncol=len(handles), fontsize=8)
    figure.tight_layout(rect=(0, 0.05, 1, 1))
    return figure
