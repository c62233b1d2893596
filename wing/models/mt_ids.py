"""Gated shared and task-specific experts: MT-IDS's DBR gate, in the CGC / PLE family.

Sources. MT-IDS (Ma, Wang, Xie, Zhao, Zhou; Neural Networks 198:108541, 2026), of which only
the abstract is public: its DBR, a "dual-control branch routing gate", weights, for each
task, SHARED experts against TASK-SPECIFIC experts. That is the Customized Gate Control
(CGC) unit of Progressive Layered Extraction (Tang, Liu, Zhao, Gong; RecSys 2020), where
task k's output is ``sum_j g_k(x)_j E_j(x)`` over the shared experts and task k's own, with
``g_k(x) = softmax(W_k x)``, and a tower per task on top. MT-IDS classifies; the abstract
says nothing of how the experts, the "dual control" or the gate's input are built.

THIS COMPENDIUM'S READING, for segmentation (not the authors' code):

* stem: the backbone's encoder, shared; its features (finest first) feed every expert;
* experts: each a decoder of the backbone (``backbone.decoder`` for the first shared one,
  ``backbone.new_decoder()`` for every other), features -> (N, ``out_channels``, H, W);
  ``shared_experts`` shared, ``task_experts`` per task;
* DBR gate per task, from the stem's coarsest feature (global average pool -> linear, or a
  1x1 convolution per pixel with ``spatial_gate``), over that task's S shared and K own
  experts. "Dual control" is read as two branches (``gate="dual"``): a GROUP branch, a
  softmax over {shared, task-specific}, and a WITHIN branch, a softmax over the experts of
  each group; expert j of group G gets ``group(G) * within_G(j)``. These weights are a convex
  combination, and every strictly positive one factorises that way, so the dual gate spans
  the same weights as CGC's flat softmax over S + K (``gate="flat"``); what it adds is the
  parametrisation: the shared-versus-own balance is one number per task and sample, which
  the abstract singles out and the compendium logs. With S = 0 or K = 0 there is one group
  and the gate is CGC's flat one;
* the gate is global per sample by default (as in CGC, where it weighs whole experts);
  ``spatial_gate`` lets it vary per pixel: 1x1 logits on the coarsest feature, upsampled
  bilinearly to the output size, then the softmax(es), so each pixel still gets a convex
  combination, at the cost of one 1x1 convolution on the coarsest feature;
* heads: a 1x1 :func:`segmentation_head` per task on its gated mixture.

Parameters: the shared ones are the encoder and the shared experts; task t's group is its
own experts, its gate and its head (the gate reads the stem but acts on task t only).

The cut (see :mod:`wing.models.base`). The shared experts read the stem features and so do
the task side (task experts and gates). Were the representation (stem features, shared
expert outputs), the gradient reaching a stem feature would already include the path
through the shared experts, counted a second time through their outputs. So the task side
reads ALIASES of the stem features (``f.view_as(f)``, made once per forward, no copy), and
the representation is ``(aliases the task side reads..., shared experts' outputs...)``: a
path from a shared parameter to a loss crosses an alias (task side) or a shared output
(shared experts), never both, and back-propagating the per-task gradients of the
representation into the shared parameters gives exactly a plain backward (tested).

Cost: S + T K decoders instead of one: memory and time of the decoder side grow about that
many times (S = 2, K = 1, T = 2: four decoders).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as functional
from torch import nn

from wing.models.base import Backbone, MultiTaskNetwork, segmentation_head

GATES = ("dual", "flat")


def task_side_view(features: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Aliases of the stem features for the task side: the cut's stem half (no copy)."""
    return [feature.view_as(feature) for feature in features]


class DualGate(nn.Module):
    """Per-task DBR gate: coarsest stem feature -> convex weights over S shared + K own experts.

    Returns (N, S + K), or (N, S + K, H, W) when ``spatial``; shared experts first.
    """

    def __init__(
        self, in_channels: int, n_shared: int, n_task: int, dual: bool, spatial: bool
    ) -> None:
        super().__init__()
        self.n_shared, self.n_task = n_shared, n_task
        self.dual = dual and n_shared > 0 and n_task > 0
        n_logits = n_shared + n_task + (2 if self.dual else 0)
        self.spatial = spatial
        self.logits = (
            nn.Conv2d(in_channels, n_logits, kernel_size=1)
            if spatial
            else nn.Linear(in_channels, n_logits)
        )

    def forward(self, coarsest: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
        if self.spatial:
            logits = functional.interpolate(
                self.logits(coarsest), size=tuple(size), mode="bilinear", align_corners=False
            )
        else:
            logits = self.logits(coarsest.mean(dim=(2, 3)))
        if not self.dual:
            return logits.softmax(dim=1)
        group, shared, own = logits.split([2, self.n_shared, self.n_task], dim=1)
        group = group.softmax(dim=1)
        return torch.cat(
            (group[:, :1] * shared.softmax(dim=1), group[:, 1:] * own.softmax(dim=1)), dim=1
        )


class GatedExpertsNetwork(MultiTaskNetwork):
    """Shared encoder, shared and task-specific decoder experts, a DBR gate and a head per task.

    ``last_gate_weights`` holds, after each forward, each task's gate weights (detached;
    shared experts first), for inspection and logging.
    """

    def __init__(
        self,
        backbone: Backbone,
        task_classes: Mapping[str, int],
        shared_experts: int = 2,
        task_experts: int = 1,
        gate: str = "dual",
        spatial_gate: bool = False,
    ):
        super().__init__(task_classes)
        if shared_experts < 0 or task_experts < 0 or shared_experts + task_experts < 1:
            raise ValueError(
                f"mt_ids needs shared_experts >= 0, task_experts >= 0 and at least one expert: "
                f"shared_experts={shared_experts}, task_experts={task_experts}"
            )
        if gate not in GATES:
            raise ValueError(f"mt_ids gate must be one of {list(GATES)}, not {gate!r}")
        self.encoder = backbone.encoder
        self.shared_experts = nn.ModuleList(
            [backbone.decoder if i == 0 else backbone.new_decoder() for i in range(shared_experts)]
        )
        # With no shared expert, backbone.decoder becomes the first task's first expert.
        spare = [backbone.decoder] if shared_experts == 0 else []
        self.task_experts = nn.ModuleDict(
            {
                task: nn.ModuleList(
                    [spare.pop() if spare else backbone.new_decoder() for _ in range(task_experts)]
                )
                for task in self.tasks
            }
        )
        self.gates = nn.ModuleDict(
            {
                task: DualGate(
                    self.encoder.channels[-1],
                    shared_experts,
                    task_experts,
                    dual=gate == "dual",
                    spatial=spatial_gate,
                )
                for task in self.tasks
            }
        )
        self.heads = nn.ModuleDict(
            {
                task: segmentation_head(backbone.out_channels, n_classes)
                for task, n_classes in task_classes.items()
            }
        )
        self.last_gate_weights: dict[str, torch.Tensor] = {}

    def forward(
        self, image: torch.Tensor
    ) -> tuple[tuple[torch.Tensor, ...], dict[str, torch.Tensor]]:
        features = self.encoder(image)
        shared = [expert(features) for expert in self.shared_experts]
        # The task side reads aliases: every stem feature when tasks have experts of their
        # own, else only the coarsest (the gates' input).
        read_by_tasks = task_side_view(
            features if any(len(e) for e in self.task_experts.values()) else features[-1:]
        )
        size = image.shape[-2:]
        logits, weights = {}, {}
        for task in self.tasks:
            own = [expert(read_by_tasks) for expert in self.task_experts[task]]
            weights[task] = self.gates[task](read_by_tasks[-1], size)
            mixture = _weighted_sum([*shared, *own], weights[task])
            logits[task] = self.heads[task](mixture)
        self.last_gate_weights = {task: w.detach() for task, w in weights.items()}
        return (*read_by_tasks, *shared), logits

    def task_parameters(self) -> dict[str, list[nn.Parameter]]:
        return {
            task: [
                *self.task_experts[task].parameters(),
                *self.gates[task].parameters(),
                *self.heads[task].parameters(),
            ]
            for task in self.tasks
        }

    def last_shared_layer(self) -> nn.Module:
        """The first shared expert's last layer (``backbone.decoder.last_layer``, hard
        sharing's W): directly below a representation tensor, so GradNorm's per-task norm is
        a pass through one 1x1 layer. The encoder's last layer, which every task path crosses,
        is reached only through every decoder (``last_shared_parameters("encoder...")``
        selects it). With no shared expert, W is the encoder's last layer."""
        if len(self.shared_experts):
            return self.shared_experts[0].last_layer
        return self.encoder.last_layer


def _weighted_sum(outputs: Sequence[torch.Tensor], weights: torch.Tensor) -> torch.Tensor:
    """sum_j weights[:, j] * outputs[j], weights (N, J) or per pixel (N, J, H, W)."""
    total = None
    for j, output in enumerate(outputs):
        weight = weights[:, j, None]  # (N, 1[, H, W]) broadcast over channels
        if weight.dim() == 2:
            weight = weight[..., None, None]
        term = weight * output
        total = term if total is None else total + term
    return total
