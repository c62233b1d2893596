"""ResFormer's multi-scale feature enhancement, as an architecture over any backbone.

Source. ResFormer (Bui, Le, Bum, Choo; Artificial Intelligence in Medicine 173:103338, 2026;
arXiv 2412.00351), a U-Net for segmentation and image-level classification together
(RETOUCH OCT, ISIC 2017). What the paper describes: a ResNet-34 encoder whose conv stages
pass through Swin Transformer stages, the "ResFormer block" (local convolutional context plus
long-range windowed attention), with a multi-scale patch embedding and ECA channel attention;
skip connections refined by a dilated feature enhancement (DFE) module, parallel 3x3
convolutions of dilation 6, 12 and 18 (plus a 1x1 branch in one variant of the authors'
code), fused, with spatial attention; a classification head on the global-pooled features of
the last two encoder stages, concatenated, then an MLP. Its loss is Dice (+ focal) + 0.25 x
the classification loss with fixed weights (here the balancer's business, not the
network's). The authors' repository (github.com/nguyenpbui/ResFormer) holds only a README,
so the paper's figure and text are all there is; the layer-level choices below are ours.

THIS COMPENDIUM'S FORM (on ``resnet_unet``, whose encoder is smp's ResNet-34, it is
ResFormer's ResNet-34 + Swin hybrid; on another backbone it is ResFormer's modules on that
backbone's encoder and decoder):

* ResFormer block (:class:`ResFormerBlock`) on each of the ``transformer_stages`` coarsest
  encoder features, width preserved, residual: ``x + Swin(ECA(fuse(cat(conv_k(x)))))`` where
  ``conv_k`` are parallel stride-1 convolutions of kernel 1, 3 and 5 (the multi-scale patch
  embedding; depthwise, ours, so that a 512-channel ResNet stage costs 35 x 512 weights
  there rather than 35 x 512^2: the 1x1 ``fuse`` then mixes channels), ECA is
  ``timm.layers.EcaModule`` and Swin is ``transformer_depth`` ``timm`` Swin blocks on NHWC
  tokens, regular and shifted windows alternating. The paper's blocks sit INSIDE the
  encoder, so a refined stage feeds the next conv stage; the encoder contract
  (:class:`wing.models.base.Encoder`) offers only its finished features, so here each block
  refines its stage's feature beside the encoder, and the next conv stage reads the
  unrefined feature. This keeps every backbone usable (and a pretrained encoder's
  computation intact) at the cost of that difference;
* windows fitted to any feature size (:class:`FittedWindowBlock`): image sides need only be
  divisible by ``backbone.input_multiple``, so the coarsest features can be 1x1 to 4x4 and a
  side need not be a multiple of the window. timm's block pads after its cyclic shift and
  computes its shifted-window mask on the padded grid, which lets real tokens attend to the
  zero padding and mislabels the wrapped-around rows when a side is not a multiple of the
  window. :class:`FittedWindowBlock` keeps timm's window attention (relative position bias),
  norms and MLP and rewrites only that glue: it shifts along a side only when the side is
  longer than the window (as timm does when it knows the size), pads, and masks both the
  padding and the wrapped rows/columns. Defaults ``window_size=4``, ``head_dim=16`` (heads =
  width // 16, at least 1) are ours, for CPU cost; Swin's are 7 and 32;
* DFE (:class:`DilatedFeatureEnhancement`) on every SKIP feature, i.e. every encoder feature
  but the coarsest (which the decoder reads as its bottleneck, not through a skip): parallel
  3x3 convolutions of dilations ``dfe_dilations`` (each conv + BN + ReLU; ``dfe=
  "pointwise_dilated"`` adds a 1x1 branch, the other code variant), concatenated, fused by a
  1x1 convolution + BN + ReLU back to the feature's width, then CBAM's spatial attention
  (``timm.layers.cbam.SpatialAttn``), added to the feature (residual), so the decoder's
  widths are unchanged; ``dfe="none"`` hands the features to the decoder untouched. A skip
  that is also ResFormer-refined (the second-coarsest with ``transformer_stages >= 2``) is
  refined first, then enhanced. On a feature smaller than a dilation, that branch sees only
  its centre tap (zero padding elsewhere) and acts as a 1x1 convolution;
* the decoder is ``backbone.decoder`` on the refined features; a 1x1
  :func:`segmentation_head` per segmentation task on its output, as hard sharing;
* classification head per IMAGE-LEVEL task (named in ``image_tasks``): the last two refined
  encoder features globally average-pooled and concatenated (``pooled``), then
  Linear-ReLU-Dropout-Linear (``classifier_hidden``, ``classifier_dropout``) to multi-label
  logits (N, n_labels). Each task has its own head.

Parameters and the cut (see :mod:`wing.models.base`). Without image tasks the network is hard
sharing with ResFormer blocks and DFE inside the shared part: the representation is the
decoder's output and GradNorm's W the decoder's last layer. With image tasks the decoder
feeds only the segmentation losses and ``pooled`` only the classification heads; the
representation is ``(decoder_output, pooled)`` (pooling has no parameter): every path from a
shared parameter to a loss crosses exactly one of them. W must then be reached by EVERY
task's loss, which the decoder's last layer is not (no classification loss reaches it): W is
the last ResFormer block, which makes the coarsest refined feature that both the decoder and
the classifiers read (the encoder's last layer when ``transformer_stages=0``).
With a single segmentation task beside image tasks, the DFE modules and the decoder reach
that task's loss only, so they are its own parameters (with its head), not shared ones; the
segmentation side then reads ALIASES of the refined features (``f.view_as(f)``, no copy, as
:mod:`wing.models.ctan` without exchanges) and the representation is ``(aliases...,
pooled)``, again a cut. At least one segmentation task is required (the decoder is the
network's reason to exist here).

Cost: per ResFormer block of width C, about 12 C^2 per Swin block (attention and MLP) plus
4 C^2 for the fuse; per skip of width C, 9 C^2 per dilated branch and B C^2 for the fuse (B
branches); a classification head is (C_{n-2} + C_{n-1}) x hidden + hidden x labels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as functional
from timm.layers import EcaModule
from timm.layers.cbam import SpatialAttn
from timm.models.swin_transformer import SwinTransformerBlock, window_partition, window_reverse
from torch import nn

from wing.models.base import Backbone, MultiTaskNetwork, segmentation_head

DFE_VARIANTS = ("dilated", "pointwise_dilated", "none")
PATCH_KERNELS = (1, 3, 5)  # the multi-scale patch embedding's parallel kernels
MASKED = -100.0  # timm's value for a masked attention logit


class FittedWindowBlock(SwinTransformerBlock):
    """timm's Swin block (window attention, norms, MLP) on NHWC tokens of ANY size.

    Only the window glue is ours (see the module docstring): the shift is applied along a
    side only when that side is longer than the window; the tokens are padded to whole
    windows; the mask keeps each token to its own region (not wrapped / wrapped by the
    shift, real / padding), computed for the actual size at each call.
    """

    def __init__(self, dim: int, head_dim: int, window_size: int, shifted: bool):
        head_dim = min(head_dim, dim)
        super().__init__(
            dim,
            input_resolution=(window_size, window_size),  # unused: sizes are read at forward
            num_heads=max(1, dim // head_dim),
            head_dim=head_dim,
            window_size=window_size,
            shift_size=window_size // 2 if shifted else 0,
            always_partition=True,  # keep the window and shift; we fit them per call
            dynamic_mask=True,  # no mask buffer for a fixed size
        )

    def _attn(self, x: torch.Tensor) -> torch.Tensor:
        n, height, width, channels = x.shape
        window = self.window_size
        shift = tuple(
            s if side > w else 0
            for s, side, w in zip(self.shift_size, (height, width), window, strict=True)
        )
        if any(shift):
            x = torch.roll(x, shifts=(-shift[0], -shift[1]), dims=(1, 2))
        pad_h, pad_w = (-height) % window[0], (-width) % window[1]
        x = functional.pad(x, (0, 0, 0, pad_w, 0, pad_h))
        windows = window_partition(x, window).view(-1, self.window_area, channels)
        mask = self.window_mask(height, width, shift, x)
        attended = self.attn(windows, mask=mask).view(-1, window[0], window[1], channels)
        x = window_reverse(attended, window, height + pad_h, width + pad_w)
        x = x[:, :height, :width].contiguous()
        if any(shift):
            x = torch.roll(x, shifts=shift, dims=(1, 2))
        return x

    def window_mask(
        self, height: int, width: int, shift: tuple[int, int], padded: torch.Tensor
    ) -> torch.Tensor | None:
        """(windows, area, area) logits offsets: 0 within a region, ``MASKED`` across; None
        when there is neither a shift nor padding (one region)."""
        padded_height, padded_width = padded.shape[1:3]
        if not any(shift) and (padded_height, padded_width) == (height, width):
            return None

        def regions(side: int, padded_side: int, s: int) -> torch.Tensor:
            ids = torch.full((padded_side,), 2, device=padded.device)  # 2: padding
            ids[:side] = 0  # in place
            if s:
                ids[side - s : side] = 1  # wrapped around by the cyclic shift
            return ids

        rows = regions(height, padded_height, shift[0])
        columns = regions(width, padded_width, shift[1])
        labels = (3 * rows[:, None] + columns[None, :]).to(padded.dtype)
        labels = window_partition(labels[None, :, :, None], self.window_size)
        labels = labels.reshape(-1, self.window_area)
        different = labels[:, None, :] != labels[:, :, None]
        return torch.zeros_like(different, dtype=padded.dtype).masked_fill(different, MASKED)


class ResFormerBlock(nn.Module):
    """``x + Swin(ECA(fuse(cat(conv_k(x) for k in PATCH_KERNELS))))``, width preserved."""

    def __init__(self, channels: int, depth: int, head_dim: int, window_size: int):
        super().__init__()
        self.embedding = nn.ModuleList(
            nn.Conv2d(channels, channels, k, padding=k // 2, groups=channels) for k in PATCH_KERNELS
        )
        self.fuse = nn.Conv2d(len(PATCH_KERNELS) * channels, channels, kernel_size=1)
        self.channel_attention = EcaModule(channels=channels)
        self.transformer = nn.Sequential(
            *(
                FittedWindowBlock(channels, head_dim, window_size, shifted=i % 2 == 1)
                for i in range(depth)
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = torch.cat([conv(x) for conv in self.embedding], dim=1)
        tokens = self.channel_attention(self.fuse(tokens))
        tokens = self.transformer(tokens.permute(0, 2, 3, 1))  # NHWC for the Swin blocks
        return x + tokens.permute(0, 3, 1, 2)


def _conv_bn_relu(in_channels: int, out_channels: int, kernel: int, dilation: int = 1):
    return nn.Sequential(
        nn.Conv2d(
            in_channels,
            out_channels,
            kernel,
            padding=dilation * (kernel // 2),
            dilation=dilation,
            bias=False,
        ),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class DilatedFeatureEnhancement(nn.Module):
    """ResFormer's DFE on a skip feature: ``x + SpatialAttention(fuse(cat(branches(x))))``,
    branches the 3x3 convolutions of each dilation (and a 1x1 one when ``pointwise``)."""

    def __init__(self, channels: int, dilations: Sequence[int], pointwise: bool):
        super().__init__()
        branches = [_conv_bn_relu(channels, channels, 1)] if pointwise else []
        branches += [_conv_bn_relu(channels, channels, 3, int(d)) for d in dilations]
        self.branches = nn.ModuleList(branches)
        self.fuse = _conv_bn_relu(len(branches) * channels, channels, 1)
        self.spatial_attention = SpatialAttn(kernel_size=7)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fused = self.fuse(torch.cat([branch(x) for branch in self.branches], dim=1))
        return x + self.spatial_attention(fused)


def classification_head(in_features: int, n_labels: int, hidden: int, dropout: float):
    """An image-level task's output layers: pooled features -> multi-label logits."""
    return nn.Sequential(
        nn.Linear(in_features, hidden),
        nn.ReLU(inplace=True),
        nn.Dropout(dropout),
        nn.Linear(hidden, n_labels),
    )


class ResFormerNetwork(MultiTaskNetwork):
    """ResFormer blocks on the coarsest encoder features, DFE on the skips, the backbone's
    decoder with a 1x1 head per segmentation task, and a multi-scale MLP head per image-level
    task (see the module docstring)."""

    supports_image_tasks = True

    def __init__(
        self,
        backbone: Backbone,
        task_classes: Mapping[str, int],
        *,
        image_tasks: Sequence[str] = (),
        transformer_stages: int = 2,
        transformer_depth: int = 2,
        head_dim: int = 16,
        window_size: int = 4,
        dfe: str = "dilated",
        dfe_dilations: Sequence[int] = (6, 12, 18),
        classifier_hidden: int = 128,
        classifier_dropout: float = 0.1,
    ):
        super().__init__(task_classes)
        unknown = [t for t in image_tasks if t not in task_classes]
        if unknown:
            raise ValueError(
                f"resformer: image_tasks {unknown} are not among the tasks {list(self.tasks)}"
            )
        self.image_tasks = tuple(t for t in self.tasks if t in set(image_tasks))
        self.segmentation_tasks = tuple(t for t in self.tasks if t not in self.image_tasks)
        if not self.segmentation_tasks:
            raise ValueError(
                f"resformer needs at least one segmentation task; all of {list(self.tasks)} "
                f"are image-level"
            )
        channels = tuple(backbone.encoder.channels)
        if not 0 <= transformer_stages <= len(channels):
            raise ValueError(
                f"resformer: transformer_stages={transformer_stages}, but the encoder has "
                f"{len(channels)} features (channels {list(channels)}); choose 0 to "
                f"{len(channels)}"
            )
        if min(transformer_depth, head_dim, window_size, classifier_hidden) < 1:
            raise ValueError(
                f"resformer needs transformer_depth, head_dim, window_size and "
                f"classifier_hidden >= 1: transformer_depth={transformer_depth}, "
                f"head_dim={head_dim}, window_size={window_size}, "
                f"classifier_hidden={classifier_hidden}"
            )
        if dfe not in DFE_VARIANTS:
            raise ValueError(f"resformer dfe must be one of {list(DFE_VARIANTS)}, not {dfe!r}")
        if dfe != "none" and (not dfe_dilations or min(dfe_dilations) < 1):
            raise ValueError(
                f"resformer: dfe={dfe!r} needs dilations >= 1, got {list(dfe_dilations)}"
            )
        if self.image_tasks and len(channels) < 2:
            raise ValueError("resformer's classification head pools two encoder features")

        self.encoder = backbone.encoder
        self.transformer_stages = transformer_stages
        self.resformer_blocks = nn.ModuleList(
            ResFormerBlock(width, transformer_depth, head_dim, window_size)
            for width in channels[len(channels) - transformer_stages :]
        )
        self.enhancements = nn.ModuleList(
            DilatedFeatureEnhancement(width, dfe_dilations, pointwise=dfe == "pointwise_dilated")
            for width in (channels[:-1] if dfe != "none" else ())
        )
        self.decoder = backbone.decoder
        pooled_width = sum(channels[-2:])
        self.heads = nn.ModuleDict(
            {
                task: classification_head(pooled_width, n, classifier_hidden, classifier_dropout)
                if task in self.image_tasks
                else segmentation_head(backbone.out_channels, n)
                for task, n in task_classes.items()
            }
        )

    @property
    def decoder_is_task_specific(self) -> bool:
        """One segmentation task beside image tasks: DFE + decoder reach its loss only."""
        return bool(self.image_tasks) and len(self.segmentation_tasks) == 1

    def refine(self, features: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """The encoder features with the k coarsest passed through their ResFormer block."""
        first = len(features) - self.transformer_stages
        blocks = zip(self.resformer_blocks, features[first:], strict=True)
        return [*features[:first], *(block(feature) for block, feature in blocks)]

    def forward(self, image: torch.Tensor):
        refined = self.refine(self.encoder(image))
        read = [f.view_as(f) for f in refined] if self.decoder_is_task_specific else refined
        skips = [dfe(f) for dfe, f in zip(self.enhancements, read[:-1], strict=False)]
        skips += read[len(skips) : -1]  # dfe="none": the skips as they are
        decoded = self.decoder([*skips, read[-1]])
        if not self.image_tasks:
            return decoded, {t: self.heads[t](decoded) for t in self.tasks}
        pooled = torch.cat([f.mean(dim=(2, 3)) for f in refined[-2:]], dim=1)
        logits = {
            t: self.heads[t](pooled if t in self.image_tasks else decoded) for t in self.tasks
        }
        representation = (*read, pooled) if self.decoder_is_task_specific else (decoded, pooled)
        return representation, logits

    def task_parameters(self) -> dict[str, list[nn.Parameter]]:
        groups = {t: list(self.heads[t].parameters()) for t in self.tasks}
        if self.decoder_is_task_specific:
            (task,) = self.segmentation_tasks
            groups[task] = [
                *self.enhancements.parameters(),
                *self.decoder.parameters(),
                *groups[task],
            ]
        return groups

    def last_shared_layer(self) -> nn.Module:
        """Without image tasks the decoder's last layer (hard sharing's W); with them the
        last ResFormer block, which every task's loss reaches (the encoder's last layer when
        there is no ResFormer block)."""
        if not self.image_tasks:
            return self.decoder.last_layer
        if len(self.resformer_blocks):
            return self.resformer_blocks[-1]
        return self.encoder.last_layer
