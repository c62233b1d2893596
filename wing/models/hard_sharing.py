"""Hard parameter sharing (Caruana 1997): encoder and decoder shared, a 1x1 head per task.

WING-MTL's architecture: the Attention-UNet is shared by the wound and the tissue task.
With a single task it is that task's single-task (STL) network. The representation is the
decoder's output; W is the decoder's last layer.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from wing.models.base import Backbone, MultiTaskNetwork, segmentation_head


class HardSharingNetwork(MultiTaskNetwork):
    def __init__(self, backbone: Backbone, task_classes: Mapping[str, int]):
        super().__init__(task_classes)
        self.encoder = backbone.encoder
        self.decoder = backbone.decoder
        self.heads = nn.ModuleDict(
            {
                task: segmentation_head(backbone.out_channels, n_classes)
                for task, n_classes in task_classes.items()
            }
        )

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        representation = self.decoder(self.encoder(image))
        return representation, {task: head(representation) for task, head in self.heads.items()}

    def task_parameters(self) -> dict[str, list[nn.Parameter]]:
        return {task: list(head.parameters()) for task, head in self.heads.items()}

    def last_shared_layer(self) -> nn.Module:
        return self.decoder.last_layer
