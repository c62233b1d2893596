"""Uncertainty weighting (Kendall, Gal, Cipolla; CVPR 2018, arXiv 1705.07115).

Each task i has a learnable log-variance s_i = log sigma_i^2 and the loss is (Eq. 10, as in
LibMTL's UW for classification-type losses)

    L = sum_i ( exp(-s_i) L_i + s_i / 2 ),

so at the optimum exp(s_i) -> 2 L_i: the weight exp(-s_i) of a task falls as its loss (its
homoscedastic noise) grows. Written here because it is four lines; s_i are stepped by the
balancer's own Adam (``learning_rate``), never by the network's optimiser, and a task absent
from a batch leaves its s_i untouched (no gradient, Adam skips it).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from wing.balancing.base import LossWeighting, OwnOptimiser


class UncertaintyWeighting(OwnOptimiser, LossWeighting):
    def __init__(self, tasks: Sequence[str], learning_rate: float = 1.0e-3):
        super().__init__(tasks)
        # One parameter per task: an absent task's s_i gets no gradient (None, not 0), so
        # Adam's momentum cannot move it on a batch without its label.
        self.log_variances = torch.nn.ParameterDict(
            {task: torch.nn.Parameter(torch.zeros(())) for task in self.tasks}
        )
        self.optimizer = torch.optim.Adam(self.log_variances.values(), lr=learning_rate)

    def _s(self, task: str) -> torch.Tensor:
        return self.log_variances[task]

    def loss_weights(self, losses):
        return {task: torch.exp(-self._s(task)) for task in losses}

    def regulariser(self, losses):
        return sum(self._s(task) / 2 for task in losses)

    def after_backward(self):
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def weights(self):
        return {task: float(torch.exp(-s.detach())) for task, s in self.log_variances.items()}
