"""MT-CooL, cooperative multi-level optimisation (Wu et al., IEEE TMI 44(4):1648, 2025).

Only the abstract is public: "each task's sub-model is updated in turn, using the others'
features, and each update seeks a flat minimum with respect to the other tasks' features (a
SAM-like perturbation of the other sub-models' parameters or features)". This is THIS
COMPENDIUM'S READING of it, not the authors' code. With hard sharing, task k's sub-model is
the shared trunk theta_s plus its head phi_k, and the part of it that the other task's
sub-model also owns (and moves) is theta_s. At each optimiser step:

1. Turn: the active task k = tasks[(step // period) % T] (``period`` steps per turn); if k
   has no label in the batch, the first task present is active instead.
2. Perturbation (SAM's first step, Foret et al., ICLR 2021, on the shared parameters only):
       e = radius * grad_{theta_s} L_k / ||grad_{theta_s} L_k||,   theta_s <- theta_s + e,
   the worst case for task k within a ball around the shared parameters that the other
   task's updates move.
3. Second pass: ``step.closure()`` re-evaluates the batch's losses at the perturbed point,
   and g = grad_{theta_s, phi_k} L_k(theta_s + e, phi_k) fills ``.grad`` of the shared
   parameters and of task k's head; then theta_s <- theta_s - e. The other heads get no
   gradient this step (their turn comes), so each sub-model is updated in turn.
The update therefore lowers task k's loss at the perturbed point (a flat minimum). It costs
two forward and two backward passes per step (SAM's 2x); the trainer's closure freezes the
BatchNorm running statistics during the second pass. The logged weight is 1 for the active
task and 0 for the others.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from wing.balancing.base import Balancer


class MTCooL(Balancer):
    family = "cooperative optimisation"
    resume_attributes = ("last_grad_norms", "_weights")

    def __init__(self, tasks: Sequence[str], radius: float = 0.05, period: int = 1):
        super().__init__(tasks)
        if radius < 0 or period < 1:
            raise ValueError(f"MT-CooL needs radius >= 0 and period >= 1, got {radius}, {period}")
        self.radius = float(radius)
        self.period = int(period)
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))
        self._weights = {task: 1.0 for task in self.tasks}

    def active_task(self, present: Sequence[str]) -> str:
        turn = self.tasks[(int(self.steps) // self.period) % len(self.tasks)]
        return turn if turn in present else present[0]

    def backward(self, losses, step):
        present = self.present(losses)
        task = self.active_task(present)
        self.steps += 1
        shared = [p for p in step.shared_parameters if p.requires_grad]
        own = [p for p in step.task_parameters[task] if p.requires_grad]
        if self.radius == 0 or step.closure is None:
            grads = torch.autograd.grad(losses[task], shared + own, allow_unused=True)
        else:
            # The batch's ascent direction, over all data-parallel processes (reduce).
            ascent = self.reduce(torch.autograd.grad(losses[task], shared, allow_unused=True))
            norm = torch.sqrt(sum((g**2).sum() for g in ascent if g is not None))
            scale = self.radius / (norm + 1e-12)
            offsets = [None if g is None else g * scale for g in ascent]
            with torch.no_grad():
                for parameter, offset in zip(shared, offsets, strict=True):
                    if offset is not None:
                        parameter.add_(offset)
            try:
                perturbed = step.closure()[task]
                grads = torch.autograd.grad(perturbed, shared + own, allow_unused=True)
            finally:
                with torch.no_grad():
                    for parameter, offset in zip(shared, offsets, strict=True):
                        if offset is not None:
                            parameter.sub_(offset)
        for parameter, grad in zip(shared + own, grads, strict=True):
            if grad is not None:
                parameter.grad = grad if parameter.grad is None else parameter.grad + grad
        self._weights = {name: float(name == task) for name in self.tasks}
        return dict(self._weights)

    def weights(self):
        return dict(self._weights)
