"""Attention U-Net (Oktay et al., MIDL 2018, arXiv 1804.03999) as a shared trunk.

The trunk is MONAI's ``AttentionUnet`` whole, with its final 1x1 convolution producing a
``channels[0]``-wide shared representation instead of class scores; each task then has its
own 1x1 output layer (see ``hard_sharing``). That final 1x1 convolution is the last shared
layer, GradNorm's W by default: the per-task gradient norms GradNorm needs then cost one
backward pass through a 1x1 layer and a head per task, not through the decoder (see
``bench/gradnorm_step.py``). Any other trunk module can be chosen by its path in params.yaml
(``train.last_shared_layer``, e.g. ``model.1.merge`` for the top decoder merge convolution).
"""

from __future__ import annotations

from collections.abc import Sequence

from monai.networks.nets import AttentionUnet

from wing.models.base import Backbone


def build(
    in_channels: int = 3,
    channels: Sequence[int] = (16, 32, 64, 128),
    strides: Sequence[int] = (2, 2, 2),
    dropout: float = 0.0,
) -> Backbone:
    network = AttentionUnet(
        spatial_dims=2,
        in_channels=in_channels,
        out_channels=channels[0],
        channels=list(channels),
        strides=list(strides),
        dropout=dropout,
    )
    return Backbone(trunk=network, out_channels=channels[0], last_shared_layer=network.model[2])
