"""The balancer contract: how task losses (or their gradients) become one update.

After torchjd (an aggregator is a function of the task Jacobian, kept apart from the
trainer) and SAM's closure (davda54/sam): the trainer never names a method. Per step it
hands the balancer the task losses of the batch and a ``Step`` (the parameter groups, the
shared representation, and a ``closure`` that re-evaluates the losses on the same batch at
the current parameters); ``backward`` fills ``.grad`` of the network's parameters and
returns the task weights it used; the trainer then takes an ordinary optimiser step.
Three families share the contract:

- ``LossWeighting``: one backward of sum_i w_i L_i (+ a regulariser), w from the losses and
  the balancer's own state (equal, fixed, uncertainty, DWA; GradNorm overrides ``backward``
  with its exact-gradient form);
- ``GradientAggregation`` (wing.balancing.aggregation): torchjd's ``mtl_backward`` fills the
  task Jacobian of the shared parameters and an aggregator combines its rows;
- methods with a second pass (MT-CooL) call ``step.closure`` after perturbing parameters.

Hooks: ``start(initial_losses)`` before the first step (GradNorm's L_i(0)) and
``end_epoch(mean_losses)`` after every epoch (DWA). A balancer is a ``torch.nn.Module``:
learnable task weights are parameters, running statistics are buffers, and a private
optimiser's state travels in ``get_extra_state``, so ``state_dict`` holds everything needed
to resume and the trainer stores it in every checkpoint. A balancer with learnable state
steps it itself (its own optimiser and learning rate, an option), so the network's
optimiser never sees it. A run killed mid-training continues from ``resume_state`` (the
``state_dict`` plus the plain attributes named in ``resume_attributes``, and whatever a
method adds by overriding it), kept apart from the checkpoints so their bytes never change.

Data parallelism (``wing.training.distributed``): the trainer all-reduces the network's
``.grad`` after ``backward``, which is right for whatever is linear in the batch's losses. A
balancer that computes something else from the batch (a norm, a loss ratio, the aggregate of
a Jacobian, its own parameters' gradients) first passes the batch-dependent tensors through
``self.reduce``, the mean over the processes (the identity in one process), so every process
takes the same decision.

Partial labels: a task with no label in the batch is absent from ``losses``; it contributes
nothing to the update (never a zero-multiplied loss, which makes MGDA and CAGrad return a
zero update). A balancer that holds weights as state leaves an absent task's weight as it
was; gradient aggregators and MT-CooL, whose weights are per step, log 0 for it.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

Losses = dict[str, torch.Tensor]
Reduce = Callable[[Sequence[torch.Tensor | None]], list[torch.Tensor | None]]


def no_reduction(tensors: Sequence[torch.Tensor | None]) -> list[torch.Tensor | None]:
    """``Balancer.reduce`` in one process: the tensors as they are."""
    return list(tensors)


@dataclass
class Step:
    """What the trainer hands a balancer at each optimiser step."""

    shared_parameters: list[nn.Parameter]
    task_parameters: dict[str, list[nn.Parameter]]  # one group per task (its head)
    last_shared_parameters: list[nn.Parameter]  # GradNorm's W
    # The shared features z the task-specific part reads: a tensor or a tuple of tensors
    # (a cut of the network, see wing.models.base).
    representation: torch.Tensor | tuple[torch.Tensor, ...] | None = None
    closure: Callable[[], Losses] | None = None  # the batch's task losses, re-evaluated


class Balancer(nn.Module, ABC):
    """One abstract method, ``backward``; ``weights`` for the log; two optional hooks."""

    family: str = ""
    # Plain Python attributes (not parameters, buffers or extra state) that change during
    # training: a resumed run needs them to continue exactly (``resume_state``).
    resume_attributes: tuple[str, ...] = ("last_grad_norms",)

    def __init__(self, tasks: Sequence[str]):
        super().__init__()
        self.tasks = tuple(tasks)
        self.last_grad_norms: dict[str, float] = {}
        # The mean over data-parallel processes of batch-dependent tensors (None stays None);
        # set by wing.training.distributed, the identity otherwise.
        self.reduce: Reduce = no_reduction

    def resume_state(self) -> dict:
        """All a run killed after this point needs to go on as if uninterrupted: the
        ``state_dict`` and copies of the ``resume_attributes``. Not in the checkpoints, which
        hold ``state_dict`` only (their bytes stay as they were)."""
        attributes = {name: copy.deepcopy(getattr(self, name)) for name in self.resume_attributes}
        return {"state_dict": self.state_dict(), "attributes": attributes}

    def load_resume_state(self, state: dict) -> None:
        """Restore what :meth:`resume_state` saved (a freshly built balancer of the same
        method, tasks and options)."""
        self.load_state_dict(state["state_dict"])
        for name, value in state["attributes"].items():
            setattr(self, name, copy.deepcopy(value))

    @abstractmethod
    def backward(self, losses: Losses, step: Step) -> dict[str, float]:
        """Fill ``.grad`` of the network's parameters; return the task weights used."""

    def start(self, initial_losses: Mapping[str, float]) -> None:  # noqa: B027 (optional)
        """Before the first step: each task's mean loss on fixed labelled batches."""

    def end_epoch(self, mean_losses: Mapping[str, float]) -> None:  # noqa: B027 (optional)
        """After each epoch: each task's mean training loss of that epoch (NaN if unseen)."""

    def weights(self) -> dict[str, float]:
        """The current task weights (for logging)."""
        return {task: 1.0 for task in self.tasks}

    def present(self, losses: Losses) -> list[str]:
        """The tasks of this balancer with a loss in this batch, in task order."""
        unknown = set(losses) - set(self.tasks)
        if unknown:
            raise KeyError(f"losses for tasks {sorted(unknown)} this balancer does not know")
        return [task for task in self.tasks if task in losses]


class LossWeighting(Balancer):
    """sum_i w_i L_i over the tasks present, plus ``regulariser``; one backward."""

    family = "loss weighting"

    @abstractmethod
    def loss_weights(self, losses: Losses) -> dict[str, torch.Tensor | float]:
        """w_i for the tasks present (a tensor may carry the graph of learnable weights)."""

    def regulariser(self, losses: Losses) -> torch.Tensor | float:
        return 0.0

    def backward(self, losses: Losses, step: Step) -> dict[str, float]:
        present = self.present(losses)
        weights = self.loss_weights({task: losses[task] for task in present})
        total = sum(weights[task] * losses[task] for task in present)
        (total + self.regulariser({task: losses[task] for task in present})).backward()
        own = [p for p in self.parameters() if p.grad is not None]
        for parameter, grad in zip(own, self.reduce([p.grad for p in own]), strict=True):
            parameter.grad = grad
        self.after_backward()
        used = {task: float(torch.as_tensor(weights[task]).detach()) for task in present}
        return {task: used.get(task, self.weights()[task]) for task in self.tasks}

    def after_backward(self) -> None:  # noqa: B027 (optional)
        """Step the balancer's own parameters (uncertainty weighting)."""


class OwnOptimiser:
    """Mixin: an Adam over the balancer's own parameters, saved in ``state_dict``."""

    optimizer: torch.optim.Optimizer

    def get_extra_state(self) -> dict:
        return {"optimizer": self.optimizer.state_dict()}

    def set_extra_state(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
