"""The balancer interface: how task losses (or their gradients) become one update.

Modelled on the ``WeightMethod`` interface of the Nash-MTL authors' code (Navon et al.,
ICML 2022): a balancer sees the task losses, the shared parameters, the last shared layer's
parameters and the shared representation, so loss-weighting methods (equal weighting,
GradNorm, uncertainty weighting) and gradient-aggregation methods (PCGrad, MGDA, ... via
torchjd) fit the same trainer. ``backward`` fills ``.grad`` of every parameter; the trainer
then takes an ordinary optimiser step. A task whose loss is ``None`` (no label in this
batch) is absent from ``losses`` and contributes nothing. Before the first step the trainer
calls ``start`` with each task's initial loss, measured on fixed labelled batches, for the
methods that need a reference loss (GradNorm's L_i(0)); the others ignore it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence

import torch


class Balancer(ABC):
    """Base class: subclasses implement ``get_weighted_loss`` and may override ``backward``."""

    def __init__(self, tasks: Sequence[str]):
        self.tasks = tuple(tasks)

    @abstractmethod
    def get_weighted_loss(
        self,
        losses: dict[str, torch.Tensor],
        shared_parameters: Sequence[torch.nn.Parameter],
        last_shared_parameters: Sequence[torch.nn.Parameter],
        representation: torch.Tensor | None,
    ) -> torch.Tensor:
        """The scalar whose gradient updates the network."""

    def start(self, initial_losses: Mapping[str, float]) -> None:  # noqa: B027 (optional hook)
        """Before the first step: each task's mean loss on fixed labelled batches.

        The trainer calls it once, for every method; the default ignores it.
        """

    def backward(
        self,
        losses: dict[str, torch.Tensor],
        shared_parameters: Sequence[torch.nn.Parameter],
        task_specific_parameters: Sequence[torch.nn.Parameter],
        last_shared_parameters: Sequence[torch.nn.Parameter],
        representation: torch.Tensor | None = None,
    ) -> dict[str, float]:
        """Back-propagate the combined loss into ``.grad``; return the weights used."""
        loss = self.get_weighted_loss(
            losses, shared_parameters, last_shared_parameters, representation
        )
        loss.backward()
        return self.weights()

    def weights(self) -> dict[str, float]:
        """The current task weights (for logging)."""
        return {task: 1.0 for task in self.tasks}
