"""The network contract: what a backbone gives an architecture, and what an architecture
gives the trainer and the balancers.

A BACKBONE (``wing.models.BACKBONES``) is an encoder and a decoder with a seam between them,
in the manner of LibMTL's encoder / decoders split:

* :class:`Encoder` maps an image to multi-scale features, finest first;
* :class:`Decoder` maps those features to a full-resolution representation of
  ``out_channels``, in stages (``begin``, ``stage(i)`` for each scale, ``end``) so an
  architecture can run two decoders side by side and exchange features between them;
* :class:`Backbone` holds one encoder, a decoder, and a factory for more decoders of the same
  design (architectures that share the encoder only give each task its own).

An ARCHITECTURE (``wing.models.ARCHITECTURES``) is a :class:`MultiTaskNetwork`: it returns
per-task logits and the shared representation the balancers need, and splits its parameters
into the shared ones (those that reach two or more task losses) and one group per task
(those that reach that task's loss only). The representation is a CUT between the two: every
shared parameter lies below it, every task parameter above it, and every path from a shared
parameter to a loss passes through exactly one of its tensors; so back-propagating each task's
loss to the representation and from there into the shared parameters gives exactly the
gradients of a plain backward (tested for every architecture). GradNorm's W, the last shared
layer, is the shared module just below the representation.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

Representation = torch.Tensor | tuple[torch.Tensor, ...]


class Encoder(nn.Module, ABC):
    """Image (N, C, H, W) -> features, finest first; ``channels[i]`` is feature i's width."""

    channels: tuple[int, ...]

    @abstractmethod
    def forward(self, image: torch.Tensor) -> list[torch.Tensor]: ...

    @property
    @abstractmethod
    def last_layer(self) -> nn.Module:
        """The module that makes the coarsest feature (W when only the encoder is shared)."""


class Decoder(nn.Module, ABC):
    """Encoder features -> a representation (N, ``out_channels``, H, W) at input resolution.

    ``forward`` is ``end(stage(n-1, ... stage(0, begin(features), features) ...), features)``;
    ``stage_channels[i]`` is the width of ``x`` after ``stage(i)`` (coarse to fine).
    """

    out_channels: int
    stage_channels: tuple[int, ...]

    @abstractmethod
    def begin(self, features: Sequence[torch.Tensor]) -> torch.Tensor: ...

    @abstractmethod
    def stage(
        self, index: int, x: torch.Tensor, features: Sequence[torch.Tensor]
    ) -> torch.Tensor: ...

    @abstractmethod
    def end(self, x: torch.Tensor, features: Sequence[torch.Tensor]) -> torch.Tensor: ...

    @property
    @abstractmethod
    def last_layer(self) -> nn.Module:
        """The module that makes the representation (W when the decoder is shared)."""

    @property
    def n_stages(self) -> int:
        return len(self.stage_channels)

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        x = self.begin(features)
        for index in range(self.n_stages):
            x = self.stage(index, x, features)
        return self.end(x, features)


@dataclass
class Backbone:
    """An encoder, its decoder, and a factory of fresh decoders of the same design.

    ``input_multiple``: image sides must be divisible by it. ``name`` and ``options`` are what
    the checkpoint records to rebuild the backbone.
    """

    encoder: Encoder
    decoder: Decoder
    new_decoder: Callable[[], Decoder]
    input_multiple: int
    name: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def out_channels(self) -> int:
        return self.decoder.out_channels


def segmentation_head(in_channels: int, n_classes: int) -> nn.Conv2d:
    """A task's output layer: a 1x1 convolution from the representation to class scores."""
    return nn.Conv2d(in_channels, n_classes, kernel_size=1)


class MultiTaskNetwork(nn.Module, ABC):
    """What the trainer, the evaluator and the balancers use of a network.

    ``forward(image)`` returns ``(representation, {task: logits})``; the representation is a
    tensor or a tuple of tensors (the cut described in the module docstring).
    """

    tasks: tuple[str, ...]

    def __init__(self, tasks: Sequence[str]):
        super().__init__()
        self.tasks = tuple(tasks)

    @abstractmethod
    def forward(self, image: torch.Tensor) -> tuple[Representation, dict[str, torch.Tensor]]: ...

    @abstractmethod
    def task_parameters(self) -> dict[str, list[nn.Parameter]]:
        """One group per task: the parameters that reach that task's loss only."""

    @abstractmethod
    def last_shared_layer(self) -> nn.Module:
        """GradNorm's W by default: the shared module just below the representation."""

    def shared_parameters(self) -> list[nn.Parameter]:
        """Every parameter not in a task's group (those that reach two or more losses)."""
        own = {id(p) for group in self.task_parameters().values() for p in group}
        return [p for p in self.parameters() if id(p) not in own]

    def task_specific_parameters(self) -> list[nn.Parameter]:
        return [p for group in self.task_parameters().values() for p in group]

    def last_shared_parameters(self, layer: str = "last") -> list[nn.Parameter]:
        """GradNorm's W: the last shared layer, or any shared sub-module by its path."""
        module = self.last_shared_layer() if layer == "last" else self.get_submodule(layer)
        return list(module.parameters())
