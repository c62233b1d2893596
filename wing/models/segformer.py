"""SegFormer (Xie et al., NeurIPS 2021, arXiv 2105.15203) with a MiT-B0 encoder.

The compendium's Transformer backbone. SegFormer was chosen over SwinUNETR (Hatamizadeh et
al., 2022) because it is a 2-D network by design (SwinUNETR was designed for 3-D volumes),
because segmentation-models-pytorch, already a dependency for the ResNet U-Net, implements
it, and because it needs no einops (MONAI's SwinUNETR does). MiT-B0 is the smallest Mix
Transformer (3.7 M parameters with this decoder).

A thin wrapper over the library's ``Segformer("mit_b0")``: the library builds, initialises
and computes the network; this module only opens the seam between its encoder and its
decoder that the contract in :mod:`wing.models.base` asks for. The encoder's features are
the four Transformer stages (strides 4 to 32), without the two the library puts first (the
image itself and an empty zero-channel stride-2 map). The decoder is the all-MLP head:
``begin`` maps each feature to ``decoder_segmentation_channels`` with a per-pixel linear
layer and resizes it (bilinear) to the stride-4 grid, coarsest first; its one ``stage``
fuses their concatenation with a 1x1 convolution, batch norm and ReLU; ``end`` upsamples the
result four times (bilinear, corners aligned, as the library's segmentation head does) so
the representation is at input resolution. ``stage`` equals the library's
``model.decoder(model.encoder(x))`` bit for bit, ``end`` its head's upsampling (tested). No
weights are downloaded: ``pretrained_path`` loads a local file into the encoder.
"""

from __future__ import annotations

import segmentation_models_pytorch as smp
import torch
import torch.nn.functional as F
from segmentation_models_pytorch.base.initialization import initialize_decoder
from segmentation_models_pytorch.decoders.segformer.decoder import SegformerDecoder
from torch import nn

from wing.models.base import Backbone, Decoder, Encoder
from wing.models.weights import load_encoder_weights

ENCODER = "mit_b0"
# all four Transformer stages: at a smaller depth the library keeps the unused ones' parameters
DEPTH = 5
UPSAMPLING = 4  # the stride of the grid the decoder works on


class SegformerEncoder(Encoder):
    """The library's Mix Transformer: features at strides 4, 8, 16 and 32, finest first."""

    def __init__(self, mit: nn.Module):
        super().__init__()
        self.mit = mit
        # the library's first two outputs are the image and an empty (zero-channel) stride-2 map
        self.channels = tuple(mit.out_channels[2:])

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        return self.mit(image)[2:]

    @property
    def last_layer(self) -> nn.Module:
        # each stage is patch embedding, Transformer blocks, then a layer norm making the feature
        return self.mit.norm4


class SegformerMLPDecoder(Decoder):
    """``SegformerDecoder.forward`` (``begin`` and one ``stage``), then 4x upsampling."""

    def __init__(self, segformer: SegformerDecoder, segmentation_channels: int):
        super().__init__()
        # the library's module names, so this decoder's state dict is SegformerDecoder's
        self.mlp_stage = segformer.mlp_stage
        self.fuse_stage = segformer.fuse_stage
        self.stage_channels = (segmentation_channels,)
        self.out_channels = segmentation_channels

    def begin(self, features):
        size = features[0].shape[2:]
        return torch.cat(
            [
                F.interpolate(mlp(feature), size=size, mode="bilinear", align_corners=False)
                for mlp, feature in zip(self.mlp_stage, reversed(features), strict=True)
            ],
            dim=1,
        )

    def stage(self, index, x, features):
        return self.fuse_stage(x)

    def end(self, x, features):
        height, width = (UPSAMPLING * side for side in x.shape[2:])
        return F.interpolate(x, size=(height, width), mode="bilinear", align_corners=True)

    @property
    def last_layer(self) -> nn.Module:
        return self.fuse_stage


def _library_segformer(*args, **kwargs) -> smp.Segformer:
    if torch.get_default_device().type != "meta":
        return smp.Segformer(*args, **kwargs)
    # The configuration check builds backbones on the meta device, and the library reads its
    # stochastic-depth rates with Tensor.item(), which meta tensors cannot do: build this
    # small network on the CPU, leaving the caller's random numbers as they were, then move
    # it to the meta device.
    with torch.random.fork_rng(devices=[]), torch.device("cpu"):
        network = smp.Segformer(*args, **kwargs)
    return network.to("meta")


def build(
    in_channels: int = 3,
    decoder_segmentation_channels: int = 256,
    pretrained_path: str = "",
) -> Backbone:
    """``decoder_segmentation_channels``: the all-MLP decoder's width, the representation's;
    ``pretrained_path``: a state dict of the library's MiT-B0 encoder (``head`` ignored), or
    '' for random initial weights."""
    network = _library_segformer(
        ENCODER,
        encoder_weights=None,
        encoder_depth=DEPTH,
        decoder_segmentation_channels=decoder_segmentation_channels,
        in_channels=in_channels,
        upsampling=UPSAMPLING,
    )
    encoder = SegformerEncoder(network.encoder)
    encoder_channels = list(network.encoder.out_channels)
    if pretrained_path:
        load_encoder_weights(encoder.mit, pretrained_path, "segformer")

    def new_decoder() -> SegformerMLPDecoder:
        # Segformer's own arguments, and its initialisation
        segformer = SegformerDecoder(
            encoder_channels=encoder_channels,
            encoder_depth=DEPTH,
            segmentation_channels=decoder_segmentation_channels,
        )
        initialize_decoder(segformer)
        return SegformerMLPDecoder(segformer, decoder_segmentation_channels)

    return Backbone(
        encoder=encoder,
        decoder=SegformerMLPDecoder(network.decoder, decoder_segmentation_channels),
        new_decoder=new_decoder,
        input_multiple=2**DEPTH,
        name="segformer",
        options={
            "in_channels": in_channels,
            "decoder_segmentation_channels": decoder_segmentation_channels,
            "pretrained_path": pretrained_path,
        },
    )
