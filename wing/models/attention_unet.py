"""Attention U-Net (Oktay et al., MIDL 2018, arXiv 1804.03999) with an encoder / decoder seam.

MONAI's ``AttentionUnet`` is one recursive ``nn.Sequential`` (each ``AttentionLayer`` holds
the deeper levels as its ``submodule``), so nothing can attach a second decoder to its
encoder. This module builds MONAI's network as it is and re-wires its own blocks, the same
module objects, into an :class:`AttentionEncoder` (the top ``ConvBlock`` and the strided
``ConvBlock`` of each level) and an :class:`AttentionDecoder` (each level's ``UpConv``,
``AttentionBlock`` and merge convolution, coarse to fine, then the final 1x1 convolution).
The parameters, their initialisation and the arithmetic are MONAI's: the re-wired network
computes exactly what ``AttentionUnet`` computes (tested bit for bit).

The final 1x1 convolution produces a ``channels[0]``-wide shared representation instead of
class scores; each task then has its own 1x1 output layer. That convolution is the last
shared layer, GradNorm's W, under hard sharing: the per-task gradient norms GradNorm needs
then cost one backward pass through a 1x1 layer and a head per task, not through the decoder
(see ``bench/gradnorm_step.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.networks.nets import AttentionUnet
from torch import nn

from wing.models.base import Backbone, Decoder, Encoder


class AttentionEncoder(Encoder):
    def __init__(self, top: nn.Module, downs: Sequence[nn.Module], channels: Sequence[int]):
        super().__init__()
        self.stages = nn.ModuleList([top, *downs])
        self.channels = tuple(channels)

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        features = []
        x = image
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features

    @property
    def last_layer(self) -> nn.Module:
        return self.stages[-1]


class AttentionDecoder(Decoder):
    """Coarse to fine: x <- merge(cat(attention(g=up(x), x=skip), up(x))), then 1x1 out."""

    def __init__(self, levels: Sequence[nn.Module], out: nn.Module, channels: Sequence[int]):
        super().__init__()
        # levels[i] is MONAI's AttentionLayer of depth i (finest first); the decoder keeps its
        # up-convolution, attention gate and merge convolution, coarse to fine.
        self.stages = nn.ModuleList(
            nn.ModuleDict(
                {"upconv": level.upconv, "attention": level.attention, "merge": level.merge}
            )
            for level in reversed(levels)
        )
        self.out = out
        self.stage_channels = tuple(reversed(channels[:-1]))
        self.out_channels = channels[0]

    def begin(self, features):
        return features[-1]

    def stage(self, index, x, features):
        parts = self.stages[index]
        skip = features[len(features) - 2 - index]
        from_lower = parts["upconv"](x)
        attended = parts["attention"](g=from_lower, x=skip)
        return parts["merge"](torch.cat((attended, from_lower), dim=1))

    def end(self, x, features):
        return self.out(x)

    @property
    def last_layer(self) -> nn.Module:
        return self.out


def _monai_parts(network: AttentionUnet) -> tuple[nn.Module, list[nn.Module], list[nn.Module]]:
    """(top ConvBlock, strided ConvBlocks finest first, AttentionLayers finest first)."""
    top, level, _ = network.model
    downs, levels = [], []
    while True:
        levels.append(level)
        if isinstance(level.submodule, nn.Sequential):
            down, level = level.submodule
            downs.append(down)
        else:
            downs.append(level.submodule)
            return top, downs, levels


def build(
    in_channels: int = 3,
    channels: Sequence[int] = (16, 32, 64, 128),
    strides: Sequence[int] = (2, 2, 2),
    dropout: float = 0.0,
) -> Backbone:
    channels, strides = tuple(channels), tuple(strides)
    if len(channels) < 3 or len(strides) != len(channels) - 1:
        raise ValueError(
            f"attention_unet needs at least 3 channels and one stride per level below the top: "
            f"channels={list(channels)}, strides={list(strides)}"
        )

    def monai() -> AttentionUnet:
        return AttentionUnet(
            spatial_dims=2,
            in_channels=in_channels,
            out_channels=channels[0],
            channels=list(channels),
            strides=list(strides),
            dropout=dropout,
        )

    def decoder_of(network: AttentionUnet) -> AttentionDecoder:
        _, _, levels = _monai_parts(network)
        return AttentionDecoder(levels, network.model[2], channels)

    network = monai()
    top, downs, _ = _monai_parts(network)
    multiple = 1
    for stride in strides:
        multiple *= stride
    return Backbone(
        encoder=AttentionEncoder(top, downs, channels),
        decoder=decoder_of(network),
        new_decoder=lambda: decoder_of(monai()),
        input_multiple=multiple,
        name="attention_unet",
        options={"channels": list(channels), "strides": list(strides), "dropout": dropout},
    )
