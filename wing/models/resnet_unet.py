"""U-Net (Ronneberger et al., MICCAI 2015) on a ResNet-34 encoder (He et al., CVPR 2016).

A thin wrapper over segmentation-models-pytorch's ``Unet("resnet34")``: the library builds,
initialises and computes the network; this module only opens the seam between its encoder
and its decoder that the contract in :mod:`wing.models.base` asks for, so an architecture can
give each task its own decoder or exchange features between decoders. Writing the network
again would only add a second implementation to test. :class:`ResNetUnetDecoder` runs the
library's ``UnetDecoder`` blocks one per stage, in the order and with the skips and target
sizes of ``UnetDecoder.forward``; ``decoder(encoder(x))`` equals the library's
``model.decoder(model.encoder(x))`` bit for bit (tested).

The encoder's features are the library's minus the first, which is the image itself: the
U-Net uses it only for its size, twice that of the stride-2 feature when the sides are
divisible by ``input_multiple``. The representation is the last decoder block's output,
``decoder_channels[-1]`` wide at input resolution; the library's 3x3 segmentation head is
replaced by the architecture's per-task heads. No weights are downloaded:
``pretrained_path`` loads a local file into the encoder.
"""

from __future__ import annotations

from collections.abc import Sequence

import segmentation_models_pytorch as smp
import torch
from segmentation_models_pytorch.base.initialization import initialize_decoder
from segmentation_models_pytorch.decoders.unet.decoder import UnetDecoder
from torch import nn

from wing.models.base import Backbone, Decoder, Encoder
from wing.models.weights import load_encoder_weights

ENCODER = "resnet34"
# all five stages: at a smaller depth the library keeps the unused stages' parameters
DEPTH = 5


class ResNetUnetEncoder(Encoder):
    """The library's ResNet-34 encoder: features at strides 2, 4, 8, 16 and 32, finest first."""

    def __init__(self, resnet: nn.Module):
        super().__init__()
        self.resnet = resnet
        self.channels = tuple(resnet.out_channels[1:])

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        return self.resnet(image)[1:]

    @property
    def last_layer(self) -> nn.Module:
        return self.resnet.layer4[-1]


class ResNetUnetDecoder(Decoder):
    """``UnetDecoder.forward`` in stages: stage i upsamples x (nearest) to the size of the
    next finer feature, concatenates that feature (none after the finest) and applies two
    3x3 convolutions; the last stage brings x to the input resolution."""

    def __init__(self, unet: UnetDecoder, decoder_channels: Sequence[int]):
        super().__init__()
        # the library's module names, so this decoder's state dict is UnetDecoder's
        self.center = unet.center
        self.blocks = unet.blocks
        self.stage_channels = tuple(decoder_channels)
        self.out_channels = self.stage_channels[-1]

    def begin(self, features):
        return self.center(features[-1])

    def stage(self, index, x, features):
        skip_index = len(features) - 2 - index
        if skip_index >= 0:
            skip = features[skip_index]
            height, width = skip.shape[2:]
        else:  # to the image's size, twice the stride-2 feature's (the image is not a feature)
            skip = None
            height, width = (2 * side for side in features[0].shape[2:])
        return self.blocks[index](x, height, width, skip_connection=skip)

    def end(self, x, features):
        return x

    @property
    def last_layer(self) -> nn.Module:
        return self.blocks[-1].conv2


def build(
    in_channels: int = 3,
    decoder_channels: Sequence[int] = (256, 128, 64, 32, 16),
    pretrained_path: str = "",
) -> Backbone:
    """``decoder_channels``: the width of each decoder stage, coarse to fine, one per encoder
    stage; ``pretrained_path``: a state dict of the library's ResNet-34 encoder (torchvision's
    ``resnet34`` keys, ``fc`` ignored), or '' for random initial weights."""
    decoder_channels = tuple(int(width) for width in decoder_channels)
    if len(decoder_channels) != DEPTH:
        raise ValueError(
            f"resnet_unet needs one decoder channel width per encoder stage ({DEPTH}), "
            f"got decoder_channels={list(decoder_channels)}"
        )
    network = smp.Unet(
        ENCODER,
        encoder_weights=None,
        encoder_depth=DEPTH,
        decoder_channels=decoder_channels,
        in_channels=in_channels,
    )
    encoder = ResNetUnetEncoder(network.encoder)
    encoder_channels = list(network.encoder.out_channels)
    if pretrained_path:
        load_encoder_weights(encoder.resnet, pretrained_path, "resnet_unet")

    def new_decoder() -> ResNetUnetDecoder:
        # Unet's own arguments for a ResNet encoder, and its initialisation
        unet = UnetDecoder(
            encoder_channels=encoder_channels,
            decoder_channels=decoder_channels,
            n_blocks=DEPTH,
        )
        initialize_decoder(unet)
        return ResNetUnetDecoder(unet, decoder_channels)

    return Backbone(
        encoder=encoder,
        decoder=ResNetUnetDecoder(network.decoder, decoder_channels),
        new_decoder=new_decoder,
        input_multiple=2**DEPTH,
        name="resnet_unet",
        options={
            "in_channels": in_channels,
            "decoder_channels": list(decoder_channels),
            "pretrained_path": pretrained_path,
        },
    )
