"""Gradient aggregation through torchjd (Jacobian descent; Quinton & Rey 2024, arXiv 2406.16232).

torchjd's ``mtl_backward`` fills each head's ``.grad`` with its own task's gradient and the
shared parameters' ``.jac`` with the task Jacobian (one row per task present); then
``jac_to_grad`` combines the rows with the method's aggregator into ``.grad`` and returns
the row weights where the aggregator has them (logged as the task weights). The aggregators
are torchjd's own; nothing here re-implements them:

- PCGrad (Yu et al., NeurIPS 2020): project each gradient off the others it conflicts with;
- MGDA (Sener & Koltun, NeurIPS 2018): the minimum-norm point of the convex hull;
- CAGrad (Liu et al., NeurIPS 2021): the best worst-case improvement in a ball of radius
  ``c`` around the mean gradient;
- Nash-MTL (Navon et al., ICML 2022): the Nash bargaining solution;
- IMTL-G (Liu et al., ICLR 2021): equal projections of the update on every gradient;
- Aligned-MTL (Senushkin et al., CVPR 2023): the gradient matrix's condition number made 1;
- UPGrad (Quinton & Rey 2024): projections onto the dual cone of the gradients, averaged.

A batch holding one task gives a one-row Jacobian: every aggregator then returns that row,
except Nash-MTL, which fails on it ("Invalid dimensions (1, 1)"); the balancer therefore
back-propagates the present task's loss directly, the same update for every method, and
logs weight 1 for it and 0 for the absent task. Cost: the Jacobian needs one backward pass
per task through the shared trunk (torchjd vectorises them with ``vmap``) and T times the
shared parameters' memory; torchjd's autogram engine would be cheaper but rejects BatchNorm,
which the Attention-UNet has. Like GradNorm's fast path, ``.grad`` is filled by hand, which
bypasses DistributedDataParallel's gradient synchronisation: under data parallelism
(``wing.training.distributed``) the Jacobian is averaged over the processes (``reduce``)
before it is aggregated, and the trainer averages the heads' ``.grad``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torchjd import aggregation
from torchjd.autojac import jac_to_grad, mtl_backward

from wing.balancing.base import Balancer


class GradientAggregation(Balancer):
    """Jacobian descent on the shared parameters with one torchjd aggregator."""

    family = "gradient aggregation"
    resume_attributes = ("last_grad_norms", "_weights")

    def __init__(self, tasks: Sequence[str], aggregator: aggregation.Aggregator):
        super().__init__(tasks)
        if len(self.tasks) < 2:
            raise ValueError(f"{type(self).__name__} aggregates two or more tasks")
        self.aggregator = aggregator
        self._weights = {task: 1.0 for task in self.tasks}

    def backward(self, losses, step):
        present = self.present(losses)
        if step.representation is None:
            raise ValueError("gradient aggregation needs the shared representation")
        if len(present) == 1:
            losses[present[0]].backward()
            self._weights = {task: float(task in present) for task in self.tasks}
            return dict(self._weights)
        shared = [p for p in step.shared_parameters if p.requires_grad]
        mtl_backward(
            [losses[task] for task in present],
            features=step.representation,
            tasks_params=[
                [p for p in step.task_parameters[task] if p.requires_grad] for task in present
            ],
            shared_params=shared,
        )
        # Data parallelism: the batch's Jacobian is the mean of the processes' Jacobians, and
        # the aggregator (nonlinear) must see that, not each process its own.
        for parameter, jacobian in zip(shared, self.reduce([p.jac for p in shared]), strict=True):
            parameter.jac = jacobian
        weights = jac_to_grad(shared, self.aggregator)
        values = (
            weights.detach().cpu().tolist()
            if weights is not None
            else [float("nan")] * len(present)
        )
        used = dict(zip(present, values, strict=True))
        self._weights = {task: used.get(task, 0.0) for task in self.tasks}
        return dict(self._weights)

    def weights(self):
        return dict(self._weights)


class PCGrad(GradientAggregation):
    def __init__(self, tasks: Sequence[str]):
        super().__init__(tasks, aggregation.PCGrad())


class MGDA(GradientAggregation):
    def __init__(self, tasks: Sequence[str], epsilon: float = 0.001, max_iters: int = 100):
        super().__init__(tasks, aggregation.MGDA(epsilon=epsilon, max_iters=max_iters))


class CAGrad(GradientAggregation):
    def __init__(self, tasks: Sequence[str], c: float = 0.4):
        super().__init__(tasks, aggregation.CAGrad(c=c))


class IMTLG(GradientAggregation):
    def __init__(self, tasks: Sequence[str]):
        super().__init__(tasks, aggregation.IMTLG())


class AlignedMTL(GradientAggregation):
    def __init__(self, tasks: Sequence[str], scale_mode: str = "min"):
        super().__init__(tasks, aggregation.AlignedMTL(scale_mode=scale_mode))


class UPGrad(GradientAggregation):
    def __init__(self, tasks: Sequence[str]):
        super().__init__(tasks, aggregation.UPGrad())


class NashMTL(GradientAggregation):
    """Nash-MTL keeps its last bargaining weights (``prvs_alpha``) between steps; they are
    saved in ``state_dict``. A balancer restored from a checkpoint re-initialises torchjd's
    solver from them (its step counter restarts, which only matters for
    ``update_weights_every`` > 1); one restored from ``resume_state`` also gets the counter."""

    def __init__(
        self,
        tasks: Sequence[str],
        max_norm: float = 1.0,
        update_weights_every: int = 1,
        optim_niter: int = 20,
    ):
        super().__init__(
            tasks,
            aggregation.NashMTL(
                n_tasks=len(tasks),
                max_norm=max_norm,
                update_weights_every=update_weights_every,
                optim_niter=optim_niter,
            ),
        )

    def get_extra_state(self) -> dict:
        return {"previous_weights": torch.as_tensor(self.aggregator.weighting.prvs_alpha)}

    def set_extra_state(self, state: dict) -> None:
        self.aggregator.weighting.prvs_alpha = state["previous_weights"].numpy().copy()

    def resume_state(self) -> dict:
        """Also the solver's step counter and last normalisation (kept out of the
        checkpoints' ``state_dict``), so ``update_weights_every`` > 1 resumes on its beat."""
        weighting = self.aggregator.weighting
        solver = {
            "step": weighting.step,
            "normalization_factor": weighting.normalization_factor.copy(),
        }
        return {**super().resume_state(), "solver": solver}

    def load_resume_state(self, state: dict) -> None:
        super().load_resume_state(state)
        weighting = self.aggregator.weighting
        if state["solver"]["step"]:
            # torchjd builds its convex problem at step 0 only; a resumed solver needs one.
            # Every solve sets all the problem's parameters first, so a new one answers alike.
            weighting._init_optim_problem()
        weighting.step = state["solver"]["step"]
        weighting.normalization_factor = state["solver"]["normalization_factor"].copy()
