"""Networks: backbones (an encoder and a decoder) and architectures (how tasks share them).

The contract is in :mod:`wing.models.base`. A new backbone is a module with a ``build``
function returning a :class:`Backbone`, plus one ``BACKBONES.register`` line; a new
architecture is a :class:`MultiTaskNetwork` taking ``(backbone, task_classes, **options)``,
plus one ``ARCHITECTURES.register`` line.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn

from wing.models import attention_unet, resnet_unet, segformer
from wing.models.base import Backbone, Decoder, Encoder, MultiTaskNetwork
from wing.models.ctan import CrossTaskAttentionNetwork
from wing.models.hard_sharing import HardSharingNetwork
from wing.models.mt_ids import GatedExpertsNetwork
from wing.models.resformer import ResFormerNetwork
from wing.registry import Registry

BACKBONES: Registry = Registry("backbone")
BACKBONES.register("attention_unet", attention_unet.build)
BACKBONES.register("resnet_unet", resnet_unet.build)
BACKBONES.register("segformer", segformer.build)

ARCHITECTURES: Registry = Registry("architecture")
ARCHITECTURES.register("hard_sharing", HardSharingNetwork)
ARCHITECTURES.register("ctan", CrossTaskAttentionNetwork)
ARCHITECTURES.register("mt_ids", GatedExpertsNetwork)
ARCHITECTURES.register("resformer", ResFormerNetwork)


def build_network(
    backbone: str,
    task_classes: Mapping[str, int],
    architecture: str = "hard_sharing",
    backbone_options: Mapping[str, Any] | None = None,
    architecture_options: Mapping[str, Any] | None = None,
    image_tasks: Sequence[str] = (),
) -> MultiTaskNetwork:
    """A network for ``task_classes`` ({task: number of output labels}); the tasks named in
    ``image_tasks`` are image-level (multi-label logits (N, labels)), the others segmentation
    tasks. Only an architecture with ``supports_image_tasks`` has heads for image tasks."""
    kind = ARCHITECTURES.get(architecture)
    options = dict(architecture_options or {})
    if image_tasks:
        if not getattr(kind, "supports_image_tasks", False):
            raise ValueError(
                f"architecture {architecture!r} has no head for image-level tasks "
                f"{list(image_tasks)}"
            )
        options["image_tasks"] = tuple(image_tasks)
    parts = BACKBONES.get(backbone)(**dict(backbone_options or {}))
    return kind(parts, task_classes, **options)


def options_of(function: Any, skip: int) -> dict[str, inspect.Parameter]:
    """The keyword options of a builder or constructor (its parameters after the first
    ``skip`` positional ones): what params.yaml may set, checked when it is read."""
    parameters = list(inspect.signature(function).parameters.values())
    if parameters and parameters[0].name == "self":
        parameters = parameters[1:]
    return {p.name: p for p in parameters[skip:]}


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


__all__ = [
    "ARCHITECTURES",
    "BACKBONES",
    "Backbone",
    "Decoder",
    "Encoder",
    "MultiTaskNetwork",
    "build_network",
    "count_parameters",
    "options_of",
]
