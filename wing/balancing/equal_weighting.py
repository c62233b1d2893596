"""Equal weighting (EW): hard parameter sharing with the plain sum of task losses.

The conventional MTL baseline; trivial, hence written here rather than imported.
"""

from __future__ import annotations

from wing.balancing.base import LossWeighting


class EqualWeighting(LossWeighting):
    def loss_weights(self, losses):
        return {task: 1.0 for task in losses}
