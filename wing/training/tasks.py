"""Tasks as specs, in the manner of LibMTL's ``task_dict``: a name, the kind of head, the
target taken from a batch, the loss and the metric. One loop trains them all.

* ``wound`` and ``tissue`` are the compared SEGMENTATION tasks of WING-MTL (label maps,
  Dice + cross-entropy by default, scored by Dice and the other metrics of
  :mod:`wing.evaluation.metrics`).
* ``tissue_presence`` is an IMAGE-LEVEL task, added because ResFormer (Bui et al. 2026)
  trains a classification head beside its segmentation decoder and the wound datasets carry
  no diagnosis label. THIS COMPENDIUM'S CHOICE: the target is derived from the tissue mask,
  multi-label: does the image show slough, necrosis, epithelium (those of the three the
  dataset's legend has; at least one pixel of the class in the network-size mask)? Slough and
  necrosis call for debridement, epithelium marks a healing edge, so it is the image-level
  question a clinician asks of a wound photograph. An image without a tissue annotation has
  no presence label (partial labels, as for the tissue task). Loss: binary cross-entropy
  with logits, mean over labelled images and labels; scored by AUROC and F1 at 0.5 per label
  (:mod:`wing.evaluation.image_tasks`). It is an AUXILIARY task: a recipe adds it with
  ``auxiliary_tasks``, it never enters the claims, and early stopping watches the compared
  tasks only (the same checkpoint rule for every method).

A segmentation loss may be chosen per recipe (``segmentation_loss``): ``dice_ce`` (every
method) or ``dice_focal`` (ResFormer's Dice + focal).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from wing.data.format import IGNORE_INDEX, Legend
from wing.training.losses import SEGMENTATION_LOSSES

COMPARED_TASKS: tuple[str, ...] = ("wound", "tissue")
"""The two tasks of WING-MTL: every recipe trains them, every claim is about them."""

PRESENCE_CLASSES: tuple[str, ...] = ("slough", "necrosis", "epithelium")
"""Tissue classes whose presence the image-level task predicts (those the legend has)."""


@dataclass(frozen=True)
class TaskSpec:
    """One task: ``kind`` is ``segmentation`` (logits (N, C, H, W), target (N, H, W)) or
    ``image`` (multi-label logits (N, L), target (N, L) floats, NaN rows unlabelled)."""

    name: str
    kind: str
    mask: str  # the batch's mask the target comes from ("wound" | "tissue")
    labels: Callable[[Legend], tuple[str, ...]]  # output label names (segmentation: classes)
    metric: str

    def n_outputs(self, legend: Legend) -> int:
        return len(self.labels(legend))

    def target(self, batch: Mapping[str, torch.Tensor], legend: Legend) -> torch.Tensor:
        mask = batch[self.mask]
        if self.kind == "segmentation":
            return mask
        return presence_target(mask, presence_indices(legend))

    def labelled(self, target: torch.Tensor) -> torch.Tensor:
        """(N,) bool: which samples of a batch carry a label for this task."""
        if self.kind == "segmentation":
            return (target != IGNORE_INDEX).flatten(1).any(1)
        return ~torch.isnan(target).any(1)

    def loss(
        self, logits: torch.Tensor, target: torch.Tensor, segmentation_loss: str = "dice_ce"
    ) -> torch.Tensor | None:
        """The task's loss over its labelled samples; None when the batch has none."""
        if self.kind == "segmentation":
            return SEGMENTATION_LOSSES[segmentation_loss](logits, target)
        labelled = self.labelled(target)
        if not bool(labelled.any()):
            return None
        return F.binary_cross_entropy_with_logits(logits[labelled], target[labelled])


def presence_indices(legend: Legend) -> tuple[int, ...]:
    """Mask indices (1-based, as in tissue masks) of the :data:`PRESENCE_CLASSES` in the
    legend; ValueError when it has none of them."""
    indices = tuple(
        legend.tissue_classes.index(c) + 1 for c in PRESENCE_CLASSES if c in legend.tissue_classes
    )
    if not indices:
        raise ValueError(
            f"the tissue legend {list(legend.tissue_classes)} has none of {PRESENCE_CLASSES}: "
            "the tissue_presence task has nothing to predict on this dataset"
        )
    return indices


def presence_target(tissue: torch.Tensor, indices: Sequence[int]) -> torch.Tensor:
    """(N, H, W) tissue maps -> (N, L) float presence of each class index; a map without a
    single annotated pixel gives a row of NaN (no label)."""
    present = torch.stack([(tissue == i).flatten(1).any(1) for i in indices], 1).float()
    annotated = (tissue != IGNORE_INDEX).flatten(1).any(1)
    return torch.where(annotated[:, None], present, torch.full_like(present, float("nan")))


TASK_SPECS: dict[str, TaskSpec] = {
    "wound": TaskSpec("wound", "segmentation", "wound", lambda _: ("background", "wound"), "dice"),
    "tissue": TaskSpec(
        "tissue", "segmentation", "tissue", lambda lg: ("background", *lg.tissue_classes), "dice"
    ),
    "tissue_presence": TaskSpec(
        "tissue_presence",
        "image",
        "tissue",
        lambda lg: tuple(c for c in PRESENCE_CLASSES if c in lg.tissue_classes),
        "auroc",
    ),
}
AUXILIARY_TASKS: tuple[str, ...] = tuple(t for t in TASK_SPECS if t not in COMPARED_TASKS)


def task_spec(name: str) -> TaskSpec:
    if name not in TASK_SPECS:
        raise KeyError(f"unknown task {name!r}; tasks: {sorted(TASK_SPECS)}")
    return TASK_SPECS[name]


def image_tasks(tasks: Sequence[str]) -> tuple[str, ...]:
    """The image-level tasks among ``tasks`` (the architecture gives them pooled heads)."""
    return tuple(t for t in tasks if task_spec(t).kind == "image")


def task_classes(legend: Legend, tasks: Sequence[str]) -> dict[str, int]:
    """Output labels per task: 2 for the wound, background + legend classes for tissue, one
    per present-able class for tissue_presence."""
    return {task: task_spec(task).n_outputs(legend) for task in tasks}
