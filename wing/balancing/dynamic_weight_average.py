"""Dynamic weight average, DWA (Liu, Johns, Davison; CVPR 2019, arXiv 1803.10704, Eq. 1).

    w_i(t) = T exp(r_i(t-1) / tau) / sum_j exp(r_j(t-1) / tau),  r_i(t-1) = L_i(t-1) / L_i(t-2)

with L_i(t) the mean training loss of task i over epoch t (the ``end_epoch`` hook) and
w_i = 1 for the first two epochs. Written here because it is a few lines on epoch means. A
task with no labelled sample in an epoch (NaN mean) keeps its previous loss history.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from wing.balancing.base import LossWeighting


class DynamicWeightAverage(LossWeighting):
    def __init__(self, tasks: Sequence[str], temperature: float = 2.0):
        super().__init__(tasks)
        if temperature <= 0:
            raise ValueError(f"DWA temperature must be positive, got {temperature}")
        self.temperature = float(temperature)
        # Rows: epoch t-2 and t-1 mean losses (NaN until seen); state, so it is a buffer.
        self.register_buffer("epoch_losses", torch.full((2, len(self.tasks)), math.nan))
        self.register_buffer("task_weights", torch.ones(len(self.tasks)))

    def end_epoch(self, mean_losses):
        new = self.epoch_losses[1].clone()
        for i, task in enumerate(self.tasks):
            value = float(mean_losses.get(task, math.nan))
            if math.isfinite(value):
                new[i] = value
        self.epoch_losses.copy_(torch.stack([self.epoch_losses[1], new]))
        if bool(torch.isfinite(self.epoch_losses).all()):
            rates = self.epoch_losses[1] / self.epoch_losses[0].clamp(min=1e-12)
            self.task_weights.copy_(len(self.tasks) * torch.softmax(rates / self.temperature, 0))

    def loss_weights(self, losses):
        return {task: float(self.task_weights[self.tasks.index(task)]) for task in losses}

    def weights(self):
        return dict(zip(self.tasks, self.task_weights.tolist(), strict=True))
