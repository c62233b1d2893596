"""Fixed task weights: L = sum_i w_i L_i with constant w_i set in params.yaml.

ResFormer's style (Bui et al. 2026: Dice + focal + 0.25 x classification loss, constant
weights chosen by hand). Trivial, hence written here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from wing.balancing.base import LossWeighting


class FixedWeighting(LossWeighting):
    def __init__(self, tasks: Sequence[str], weights: Mapping[str, float] | None = None):
        super().__init__(tasks)
        weights = dict(weights or {})
        unknown = set(weights) - set(self.tasks)
        if unknown:
            raise ValueError(f"fixed weights for unknown tasks {sorted(unknown)}")
        if any(float(w) < 0 for w in weights.values()):
            raise ValueError(f"fixed weights must be non-negative, got {weights}")
        self.fixed = {task: float(weights.get(task, 1.0)) for task in self.tasks}

    def loss_weights(self, losses):
        return {task: self.fixed[task] for task in losses}

    def weights(self):
        return dict(self.fixed)
