"""DD-GB, dual-dimensional gradient balancing (MT-IDS; Ma et al., Neural Networks 2026).

Only the abstract is public: DD-GB "aligns task gradient directions (conflict projection)
and scales their magnitudes dynamically while keeping the inter-task magnitude
distribution". This is THIS COMPENDIUM'S READING of it, not the authors' code. With g_i the
task gradients on the shared parameters (rows of the Jacobian J, Gramian G = J J^T):

1. Direction (conflict projection): every g_i loses its component along each g_j it
   conflicts with (g_i . g_j < 0), projected on the ORIGINAL g_j, so the result does not
   depend on task order (PCGrad projects sequentially in random order):
       h_i = g_i - sum_{j != i, G_ij < 0} (G_ij / G_jj) g_j.
   With two conflicting tasks h_1 . g_2 = h_2 . g_1 = 0 and h_1 . h_2 = -G_12 (1 - cos^2)
   >= 0: the directions no longer conflict (aligned).
2. Magnitude (dynamic rescaling that keeps the distribution): each h_i is rescaled to the
   norm its task had before the projection, every step,
       a_i = ||g_i|| / ||h_i|| h_i,  so  ||a_i|| / ||a_j|| = ||g_i|| / ||g_j||,
   the inter-task magnitude ratios of the raw gradients (the projection alone would shrink
   the more conflicted task).
3. Update d = sum_i a_i. d is a linear combination of the rows of J, so DD-GB is a torchjd
   ``Weighting`` of the Gramian (weights w = s^T (I - C), s_i = ||g_i|| / ||h_i||,
   C_ij = G_ij / G_jj on conflicting pairs) and runs through the same ``jac_to_grad`` as the
   other aggregators; the weights are logged.
Without conflict h_i = g_i, s_i = 1 and DD-GB is the plain sum (equal weighting).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torchjd.aggregation import GramianWeightedAggregator, Weighting

from wing.balancing.aggregation import GradientAggregation

EPSILON = 1e-12


def aligned_combination(gramian: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(A, s): the aligned, rescaled gradients are rows of diag(s) A J (steps 1-2 above)."""
    t = gramian.shape[0]
    diagonal = gramian.diagonal().clamp(min=EPSILON)
    conflict = (gramian < 0) & ~torch.eye(t, dtype=torch.bool, device=gramian.device)
    coefficients = torch.where(conflict, gramian / diagonal[None, :], torch.zeros_like(gramian))
    projection = torch.eye(t, dtype=gramian.dtype, device=gramian.device) - coefficients
    projected_norms = (projection @ gramian @ projection.T).diagonal().clamp(min=0).sqrt()
    raw_norms = gramian.diagonal().clamp(min=0).sqrt()
    scale = torch.where(
        projected_norms > EPSILON, raw_norms / projected_norms.clamp(min=EPSILON), 0.0
    )
    return projection, scale


class DDGBWeighting(Weighting):
    """w = s^T A: the weights of the rows of J in d = sum_i s_i (A J)_i."""

    def forward(self, gramian: torch.Tensor, /) -> torch.Tensor:
        projection, scale = aligned_combination(gramian)
        return scale @ projection


class DDGB(GradientAggregation):
    def __init__(self, tasks: Sequence[str]):
        super().__init__(tasks, GramianWeightedAggregator(DDGBWeighting()))
