"""What every backbone provides to an architecture."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn


@dataclass
class Backbone:
    """A shared trunk mapping an image to a full-resolution feature map.

    ``last_shared_layer`` is the module whose parameters are GradNorm's W by default.
    """

    trunk: nn.Module
    out_channels: int
    last_shared_layer: nn.Module
