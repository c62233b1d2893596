"""Hard parameter sharing (Caruana 1997): one shared trunk, one 1x1 output head per task.

WING-MTL's architecture: the Attention-UNet trunk is shared by the wound and the tissue task.
With a single task it is that task's single-task (STL) network.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from monai.networks.blocks import Convolution
from torch import nn

from wing.models.base import Backbone


class HardSharingNetwork(nn.Module):
    def __init__(self, backbone: Backbone, task_classes: Mapping[str, int]):
        super().__init__()
        self.trunk = backbone.trunk
        self.tasks = tuple(task_classes)
        self.heads = nn.ModuleDict(
            {
                task: Convolution(
                    spatial_dims=2,
                    in_channels=backbone.out_channels,
                    out_channels=n_classes,
                    kernel_size=1,
                    strides=1,
                    padding=0,
                    conv_only=True,
                )
                for task, n_classes in task_classes.items()
            }
        )
        self._last_shared_layer = backbone.last_shared_layer

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Return the shared representation and each task's logits."""
        representation = self.trunk(image)
        return representation, {task: head(representation) for task, head in self.heads.items()}

    def shared_parameters(self) -> list[nn.Parameter]:
        return list(self.trunk.parameters())

    def task_specific_parameters(self) -> list[nn.Parameter]:
        return list(self.heads.parameters())

    def task_parameters(self) -> dict[str, list[nn.Parameter]]:
        """One parameter group per task (its head)."""
        return {task: list(head.parameters()) for task, head in self.heads.items()}

    def last_shared_parameters(self, layer: str = "last") -> list[nn.Parameter]:
        """GradNorm's W: the backbone's last shared layer, or a named trunk sub-module."""
        module = self._last_shared_layer if layer == "last" else self.trunk.get_submodule(layer)
        return list(module.parameters())
