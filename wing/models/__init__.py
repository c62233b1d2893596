"""Networks: backbones (shared trunks) and architectures (how tasks share them)."""

from __future__ import annotations

from collections.abc import Mapping

from torch import nn

from wing.models import attention_unet
from wing.models.base import Backbone
from wing.models.hard_sharing import HardSharingNetwork
from wing.registry import Registry

BACKBONES: Registry = Registry("backbone")
BACKBONES.register("attention_unet", attention_unet.build)

ARCHITECTURES: Registry = Registry("architecture")
ARCHITECTURES.register("hard_sharing", HardSharingNetwork)


def build_network(
    backbone: str,
    task_classes: Mapping[str, int],
    architecture: str = "hard_sharing",
    **backbone_options,
) -> nn.Module:
    """A network for ``task_classes`` ({task: number of output labels})."""
    return ARCHITECTURES.get(architecture)(
        BACKBONES.get(backbone)(**backbone_options), task_classes
    )


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


__all__ = ["ARCHITECTURES", "BACKBONES", "Backbone", "build_network", "count_parameters"]
