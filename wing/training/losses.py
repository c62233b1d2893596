"""Per-task segmentation losses: Dice + cross-entropy (MONAI's DiceCE, with an ignore label),
and ResFormer's Dice + focal.

MONAI's ``DiceCELoss`` has no ignore index, and real tissue masks mark unannotated pixels
255; the Dice half is therefore MONAI's ``DiceLoss`` on masked one-hot inputs and the
cross-entropy half torch's with ``ignore_index``. A batch without a single labelled pixel
for a task returns ``None`` (the task is absent from that step; see the balancers). The
focal half is written here for the same reason (MONAI's ``FocalLoss`` has no ignore index):
the focal loss of Lin et al. (2017), ``(1 - p_t)^gamma * CE``, with gamma 2 and no class
weights, from the same per-pixel cross-entropy.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from monai.losses import DiceLoss

from wing.data.format import IGNORE_INDEX

_dice = DiceLoss(include_background=True, to_onehot_y=False, softmax=False, batch=True)


FOCAL_GAMMA = 2.0


def segmentation_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor | None:
    """Dice + CE of ``logits`` (B, C, H, W) against label map ``target`` (B, H, W)."""
    return _dice_plus(logits, target, focal=False)


def dice_focal_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor | None:
    """Dice + focal (gamma 2) of ``logits`` against ``target``: ResFormer's segmentation loss."""
    return _dice_plus(logits, target, focal=True)


def _dice_plus(logits: torch.Tensor, target: torch.Tensor, focal: bool) -> torch.Tensor | None:
    valid = target != IGNORE_INDEX
    if not bool(valid.any()):
        return None
    # Mean over labelled pixels by hand: CUDA's mean-reduced 2-D NLL kernel is not
    # deterministic, and torch.use_deterministic_algorithms(True) would refuse it.
    per_pixel = F.cross_entropy(logits, target, ignore_index=IGNORE_INDEX, reduction="none")
    if focal:
        per_pixel = (1 - torch.exp(-per_pixel)) ** FOCAL_GAMMA * per_pixel
    cross_entropy = per_pixel.sum() / valid.sum()
    mask = valid.unsqueeze(1).to(logits.dtype)
    clean = torch.where(valid, target, torch.zeros_like(target))
    one_hot = F.one_hot(clean, logits.shape[1]).permute(0, 3, 1, 2).to(logits.dtype)
    dice = _dice(torch.softmax(logits, dim=1) * mask, one_hot * mask)
    return dice + cross_entropy


SEGMENTATION_LOSSES = {"dice_ce": segmentation_loss, "dice_focal": dice_focal_loss}
"""The segmentation losses a recipe may choose (``segmentation_loss``)."""
