"""Attention U-Net (Oktay et al., MIDL 2018, arXiv 1804.03999) as a shared trunk.

MONAI's ``AttentionUnet`` is ``Sequential(head, encoder-decoder, 1x1 reduce)``; the trunk is
its first two parts and each task gets its own 1x1 reduce layer (see ``hard_sharing``), so a
single-task network here is exactly MONAI's model. The last shared layer is the top-level
merge convolution that fuses the attention-gated skip with the up-sampled decoder features.
"""

from __future__ import annotations

from collections.abc import Sequence

from monai.networks.nets import AttentionUnet
from torch import nn

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
    head, encoder_decoder = network.model[0], network.model[1]
    return Backbone(
        trunk=nn.Sequential(head, encoder_decoder),
        out_channels=channels[0],
        last_shared_layer=encoder_decoder.merge,
    )
