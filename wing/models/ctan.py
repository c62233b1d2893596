"""Cross-task attention between task decoders, after CTAN.

Source. CTAN, the Cross-Task Attention Network (Kim, Purdie, McIntosh; arXiv 2309.03837,
2023), of which only the abstract is public. The abstract says: an attention-based
multi-task framework that "utilizes cross-task attention mechanisms to incorporate
information by interacting across tasks", for tasks from pixel-level to image-level
predictions; validated on four medical imaging datasets (Prostate, OpenKBP, HAM10000,
STOIC); +4.67% over single-task learning and +3.22% over hard parameter sharing on average,
MTAN also compared. It says nothing of where the attention sits, what attends to what, or how
the tasks' networks are built.

THIS COMPENDIUM'S READING, for segmentation (not the authors' code). The brief's reading,
task branches exchanging features at several scales with queries from one task and keys and
values from the other, is ours, not the abstract's; so is every concrete choice below:

* encoder: the backbone's encoder, shared by all tasks;
* decoders: one per task (``backbone.decoder`` for the first task, ``backbone.new_decoder()``
  for each other), run side by side stage by stage (``begin``, ``stage(i)``, ``end``);
* exchanges: ``exchange_stages`` = k exchange points at the k finest scales of the
  decoders: after stages n-k, ..., n-2 and, for the finest, after ``end`` (on the decoder
  output, at input resolution), n being the decoder's number of stages; k is
  capped at n. With the Attention-UNet (channels (16, 32, 64, 128), 96 px images) and k = 2,
  the points are after stage 1 (48 px, 32 channels) and after ``end`` (96 px, 16 channels).
  Coarser points would be cheaper; we exchange where the two label maps are formed (the
  wound's outline and the tissue regions inside it, at the finest scales) and bound the cost
  of a fine scale by the key/value pooling below. The finest point is after ``end`` rather
  than after the last stage so that nothing of a decoder is task-specific: the decoder
  contract does not say which parameters ``end`` uses (resnet_unet's ``end`` is the identity
  and its ``last_layer`` belongs to its last stage), so an exchange before ``end`` would
  leave the architecture unable to name task t's parameters for every backbone;
* one exchange refines every task's features at once, from the features of all tasks before
  it: ``x_t <- x_t + gamma_t * MHA(LN(x_t), LN(pool(x_o)))`` with queries from task t at
  every pixel, keys and values from the other task(s) o (concatenated when there are more
  than two), ``torch.nn.MultiheadAttention`` with ``heads`` heads (its output projection
  included) on flattened spatial positions, one ``CrossTaskAttention`` block per task and
  point. ``pool`` is an adaptive average pooling of the keys and values to at most
  ``key_value_size`` x ``key_value_size`` positions (0: none), so the attention costs
  O(H W key_value_size^2) instead of O((H W)^2); the queries keep full resolution, so every
  pixel receives its own update. No positional encoding: the attention is content-based, as
  in a non-local block; position enters through the residual;
* the residual is normalised (pre-norm, as in a pre-LN transformer block: LayerNorm on the
  queries and on the keys/values) and gated by a learnable scalar ``gamma_t`` per block,
  initialised at ``residual_scale`` (1 by default). ``residual_scale=0`` starts the network
  as an encoder with independent decoders (ReZero's start, Bachlechner et al. 2020), but the
  attention weights then receive no gradient until gamma has moved;
* heads: a 1x1 :func:`segmentation_head` per task on its decoder's (exchanged) output.

Parameters and the cut (see :mod:`wing.models.base`). The encoder, both decoders and the
blocks of every exchange point but the last reach both tasks' losses (a decoder's features
enter the other task through the exchanges), so they are shared. The last point's block of
task t reads both tasks' decoder outputs but feeds only task t's head: it is task t's, with
its head. The representation is therefore ``(x_t for each task)``, the decoders' outputs
just BEFORE the last exchange, one tensor per task and each read by every task: every path
from a shared parameter to a loss crosses exactly one of them, and back-propagating each
task's loss to them and on into the shared parameters gives exactly a plain backward
(tested). GradNorm's W (``last_shared_layer``) is the decoders' last layers, one per task,
which make the representation (hard sharing's W, once per decoder).

With ``exchange_stages=0`` only the encoder is shared: each task's whole decoder and head are
its own. The decoders then read ALIASES of the encoder features (``f.view_as(f)``, no copy)
and the representation is those aliases: a path from an encoder parameter to a loss crosses
exactly one alias, never a feature and then a deeper feature's alias too (the features are
chained). W is the encoder's last layer. With one task (STL) nothing is exchanged and the
network is exactly hard sharing's STL network (the same modules built in the same order: the
same weights from the same seed): the encoder and the decoder shared, W the decoder's last
layer, the representation the decoder's output.

Cost: one decoder per task (for two tasks, twice hard sharing's decoder parameters and
compute) plus, per exchange point and task, a block of 4 C^2 + 8 C + 1 parameters (C the
point's width: the attention's projections, two LayerNorms, gamma) and an attention of H W
queries over at most ``key_value_size``^2 keys per other task.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as functional
from torch import nn

from wing.models.base import Backbone, Decoder, MultiTaskNetwork, segmentation_head


class CrossTaskAttention(nn.Module):
    """One task's refinement at one exchange point (CTAN's cross-task attention, our form):
    ``x + gamma * MHA(LN(x), LN(pool(others)))``, queries from ``x`` at every position, keys
    and values from the other tasks' features pooled to at most ``key_value_size`` squared
    positions (0: not pooled)."""

    def __init__(self, channels: int, heads: int, key_value_size: int, residual_scale: float):
        super().__init__()
        self.key_value_size = key_value_size
        self.query_norm = nn.LayerNorm(channels)
        self.key_value_norm = nn.LayerNorm(channels)
        self.attention = nn.MultiheadAttention(channels, heads, batch_first=True)
        self.gamma = nn.Parameter(torch.tensor(float(residual_scale)))

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, H W, C), keys/values pooled first when ``key_value_size``."""
        if self.key_value_size:
            size = (min(x.shape[-2], self.key_value_size), min(x.shape[-1], self.key_value_size))
            x = functional.adaptive_avg_pool2d(x, size)
        return x.flatten(2).transpose(1, 2)

    def forward(self, x: torch.Tensor, others: Sequence[torch.Tensor]) -> torch.Tensor:
        n, c, h, w = x.shape
        queries = self.query_norm(x.flatten(2).transpose(1, 2))
        keys = self.key_value_norm(torch.cat([self.tokens(o) for o in others], dim=1))
        attended, _ = self.attention(queries, keys, keys, need_weights=False)
        return x + self.gamma * attended.transpose(1, 2).reshape(n, c, h, w)


class CrossTaskAttentionNetwork(MultiTaskNetwork):
    """Shared encoder, one decoder per task, cross-task attention between the decoders at
    the ``exchange_stages`` finest scales, and a head per task (see the module docstring)."""

    def __init__(
        self,
        backbone: Backbone,
        task_classes: Mapping[str, int],
        heads: int = 2,
        exchange_stages: int = 2,
        key_value_size: int = 16,
        residual_scale: float = 1.0,
    ):
        super().__init__(task_classes)
        if heads < 1 or exchange_stages < 0 or key_value_size < 0:
            raise ValueError(
                f"ctan needs heads >= 1, exchange_stages >= 0 and key_value_size >= 0: "
                f"heads={heads}, exchange_stages={exchange_stages}, "
                f"key_value_size={key_value_size}"
            )
        self.encoder = backbone.encoder
        self.decoders = nn.ModuleDict(
            {
                task: backbone.decoder if i == 0 else backbone.new_decoder()
                for i, task in enumerate(self.tasks)
            }
        )
        self.heads = nn.ModuleDict(
            {
                task: segmentation_head(backbone.out_channels, n_classes)
                for task, n_classes in task_classes.items()
            }
        )
        first: Decoder = self.decoders[self.tasks[0]]
        n_stages = first.n_stages
        # Exchange points (one task has none): after stages n-k .. n-2, then after ``end``.
        self.exchange_stages = min(exchange_stages, n_stages) if len(self.tasks) > 1 else 0
        self.exchange_after = tuple(range(n_stages - self.exchange_stages, n_stages - 1))
        widths = [first.stage_channels[i] for i in self.exchange_after]
        widths += [first.out_channels] if self.exchange_stages else []
        for width in widths:
            if width % heads:
                raise ValueError(
                    f"ctan: {heads} attention heads do not divide the {width} channels of an "
                    f"exchange point (decoder widths {list(first.stage_channels)}, output "
                    f"{first.out_channels}); choose heads dividing each, or fewer "
                    f"exchange_stages"
                )
        self.exchanges = nn.ModuleList(
            nn.ModuleDict(
                {
                    task: CrossTaskAttention(width, heads, key_value_size, residual_scale)
                    for task in self.tasks
                }
            )
            for width in widths
        )

    def forward(
        self, image: torch.Tensor
    ) -> tuple[torch.Tensor | tuple[torch.Tensor, ...], dict[str, torch.Tensor]]:
        features = self.encoder(image)
        if len(self.tasks) == 1:  # STL: hard sharing's network
            (task,) = self.tasks
            representation = self.decoders[task](features)
            return representation, {task: self.heads[task](representation)}
        if not self.exchanges:  # the encoder alone is shared: the cut is at its features
            read = tuple(feature.view_as(feature) for feature in features)
            logits = {t: self.heads[t](self.decoders[t](read)) for t in self.tasks}
            return read, logits

        x = {t: decoder.begin(features) for t, decoder in self.decoders.items()}
        points = iter(self.exchanges)
        for index in range(self.decoders[self.tasks[0]].n_stages):
            x = {t: decoder.stage(index, x[t], features) for t, decoder in self.decoders.items()}
            if index in self.exchange_after:
                x = self.exchange(next(points), x)
        x = {t: decoder.end(x[t], features) for t, decoder in self.decoders.items()}
        representation = tuple(x.values())  # the last exchange's blocks are task-specific
        x = self.exchange(next(points), x)
        return representation, {t: self.heads[t](x[t]) for t in self.tasks}

    def exchange(
        self, blocks: nn.ModuleDict, x: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """Every task refined from every other task's features before this point."""
        return {
            t: block(x[t], [x[other] for other in self.tasks if other != t])
            for t, block in blocks.items()
        }

    def task_parameters(self) -> dict[str, list[nn.Parameter]]:
        if len(self.tasks) == 1:
            return {t: list(head.parameters()) for t, head in self.heads.items()}
        if not self.exchanges:  # each decoder reaches its own task's loss only
            return {
                t: [*self.decoders[t].parameters(), *self.heads[t].parameters()] for t in self.tasks
            }
        return {
            t: [*self.exchanges[-1][t].parameters(), *self.heads[t].parameters()]
            for t in self.tasks
        }

    def last_shared_layer(self) -> nn.Module:
        """The decoders' last layers (one per task), which make the representation; without
        exchanges the encoder's last layer; with one task the decoder's (hard sharing's W)."""
        if len(self.tasks) > 1 and not self.exchanges:
            return self.encoder.last_layer
        return nn.ModuleList(decoder.last_layer for decoder in self.decoders.values())
