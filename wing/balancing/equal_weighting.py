"""Equal weighting (EW): hard parameter sharing with the plain sum of task losses.

The conventional MTL baseline; trivial, hence written here rather than imported.
"""

from __future__ import annotations

import torch

from wing.balancing.base import Balancer


class EqualWeighting(Balancer):
    def get_weighted_loss(self, losses, shared_parameters, last_shared_parameters, representation):
        return torch.stack(list(losses.values())).sum()
