"""GradNorm (Chen, Badrinarayanan, Lee, Rabinovich; ICML 2018, arXiv 1711.02257).

WING-MTL balances its two tasks with GradNorm; this is the project's own implementation
because the algorithm's exact form is the object of study (no maintained library ships it).
With W the last shared layer, T tasks and w_i(0) = 1, each step:

    G_i    = || grad_W (w_i L_i) ||_2 = w_i || grad_W L_i ||_2          (Eq. 1-2)
    r_i    = (L_i / L_i(0)) / mean_j (L_j / L_j(0))                       (inverse rate)
    L_grad = sum_i | G_i - stopgrad(mean_j G_j * r_i ** alpha) |          (Eq. 2)
    w     <- optimiser step on d L_grad / d w only;  w <- T w / sum(w)

and the network is updated by d(sum_i w_i L_i)/d theta only. Two consequences shape the code:
(1) the per-task norms ||grad_W L_i|| do not depend on w, so d L_grad / d w is computed by
``torch.autograd.grad(L_grad, w)`` on a tiny graph, with no ``create_graph`` and no
second-order terms leaking into the network's gradients (the pitfall of popular versions);
(2) the network's gradient of W is sum_i w_i grad_W L_i, which is assembled from the
per-task gradients already computed, and the main backward pass skips W. So a GradNorm step
costs one ordinary backward plus T short backwards through the heads and W.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from wing.balancing.base import Balancer


class GradNorm(Balancer):
    def __init__(self, tasks: Sequence[str], alpha: float = 1.5, learning_rate: float = 0.025):
        super().__init__(tasks)
        if len(self.tasks) < 2:
            raise ValueError("GradNorm balances two or more tasks")
        self.alpha = float(alpha)
        self.task_weights = torch.nn.Parameter(torch.ones(len(self.tasks)))
        self.optimizer = torch.optim.Adam([self.task_weights], lr=learning_rate)
        self.initial_losses: dict[str, float] = {}
        self.last_grad_norms: dict[str, float] = {}

    def weights(self) -> dict[str, float]:
        return dict(zip(self.tasks, self.task_weights.detach().tolist(), strict=True))

    def get_weighted_loss(self, losses, shared_parameters, last_shared_parameters, representation):
        weights = self.task_weights.detach()
        return sum(weights[self.tasks.index(t)] * loss for t, loss in losses.items())

    def backward(
        self,
        losses,
        shared_parameters,
        task_specific_parameters,
        last_shared_parameters,
        representation=None,
    ):
        present = [t for t in self.tasks if t in losses]
        index = torch.tensor([self.tasks.index(t) for t in present])
        last = [p for p in last_shared_parameters if p.requires_grad]
        # grad_W L_i for each present task; only the heads and W are traversed.
        task_grads = [
            torch.autograd.grad(losses[t], last, retain_graph=True, allow_unused=True)
            for t in present
        ]
        norms = torch.stack(
            [
                torch.sqrt(sum((g.detach() ** 2).sum() for g in grads if g is not None))
                for grads in task_grads
            ]
        )
        used = self.task_weights.detach().clone()
        logs = dict(zip(self.tasks, used.tolist(), strict=True))

        # The network: d(sum_i w_i L_i)/d theta, with W's share assembled from task_grads.
        total = sum(used[i] * losses[t] for i, t in zip(index.tolist(), present, strict=True))
        last_ids = {id(p) for p in last}
        rest = [
            p
            for p in [*shared_parameters, *task_specific_parameters]
            if p.requires_grad and id(p) not in last_ids
        ]
        torch.autograd.backward(total, inputs=rest)
        for j, parameter in enumerate(last):
            parts = [
                used[i] * grads[j]
                for i, grads in zip(index.tolist(), task_grads, strict=True)
                if grads[j] is not None
            ]
            if parts:
                grad = torch.stack(parts).sum(0)
                parameter.grad = grad if parameter.grad is None else parameter.grad + grad

        # The weights: d L_grad / d w only (Eq. 2), then renormalise to sum T.
        for t in present:
            self.initial_losses.setdefault(t, max(float(losses[t].detach()), 1e-12))
        if len(present) >= 2:
            ratios = torch.tensor(
                [float(losses[t].detach()) / self.initial_losses[t] for t in present]
            )
            inverse_rate = ratios / ratios.mean()
            grad_norms = self.task_weights[index] * norms
            target = (grad_norms.mean() * inverse_rate**self.alpha).detach()
            gradnorm_loss = (grad_norms - target).abs().sum()
            (self.task_weights.grad,) = torch.autograd.grad(gradnorm_loss, [self.task_weights])
            self.optimizer.step()
            with torch.no_grad():
                # Safeguard (not in the paper): keep weights positive before renormalising.
                self.task_weights.clamp_(min=1e-4)
                self.task_weights.mul_(len(self.tasks) / self.task_weights.sum())
        self.last_grad_norms = {
            t: float(used[i] * n)
            for i, t, n in zip(index.tolist(), present, norms.tolist(), strict=True)
        }
        return logs
